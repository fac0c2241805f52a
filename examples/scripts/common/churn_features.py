"""Feature definitions for the churn model (shared by the feature pipeline and
by data/generate.py, which uses them to build the deployment holdout sample).
"""

from datetime import datetime, timezone

# The model's inputs, in a fixed order.
FEATURES = [
    "total_spend",               # sum of clean transaction amounts
    "txn_count",                 # number of clean transactions
    "avg_basket",                # total_spend / txn_count
    "days_since_last_purchase",  # measured from the data's as-of time, capped
    "clicks",                    # clickstream events
    "sessions",                  # distinct clickstream sessions
]
LABEL = "churned"
MAX_DAYS = 365.0


def _parse(ts):
    if not ts:
        return None
    ts = ts.strip()
    if ts.endswith("Z"):
        ts = ts[:-1] + "+00:00"
    dt = datetime.fromisoformat(ts)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def churn_label(status) -> int:
    """The label is deterministic: a customer has churned when the CRM account
    status is 'cancelled' (normalised to lower case by the data pipeline)."""
    return 1 if (status or "").strip().lower() == "cancelled" else 0


def compute_features(customer: dict, as_of: datetime) -> dict:
    """One customer's feature row from a clean_customers row.

    `as_of` is the time the data describes (the newest event in the
    warehouse), not the wall clock, so the bundled frozen sample gives the
    same features whenever it is processed.
    """
    total = float(customer.get("total_spend") or 0.0)
    count = int(customer.get("txn_count") or 0)
    last = _parse(customer.get("last_purchase_at"))
    if last is None:
        days = MAX_DAYS
    else:
        days = min(MAX_DAYS, max(0.0, (as_of - last).total_seconds() / 86400.0))
    return {
        "customer_id": customer["customer_id"],
        "total_spend": round(total, 2),
        "txn_count": count,
        "avg_basket": round(total / count, 2) if count else 0.0,
        "days_since_last_purchase": round(days, 2),
        "clicks": int(customer.get("clicks") or 0),
        "sessions": int(customer.get("sessions") or 0),
        LABEL: churn_label(customer.get("status")),
    }

#!/usr/bin/env python3
"""Build the training dataset from the feature store with a point-in-time join.

The entity rows are the customers in the warehouse's clean_customers table,
each asking for its features as of now. Baton's feature store answers with
feature service churn_training (pipelines/features.yaml): each customer's
latest customer_features row at or before that time and within the view's
30-day ttl, never a later one, so a training set rebuilt for a past time sees
exactly what was known then. Customers are split into train and test by a
stable hash of their id, and var/training/<logical date>/dataset.csv is written
for the three trainers.

Baton starts this task only once feature_pipeline has updated the feature view
customer_features within the last 3 hours (`requires:` in
pipelines/model_training_flow.yaml); on the first start it waits for that
update.  The checks below guard against a store that is still unusable.
"""

import csv
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402
from churn_features import FEATURES, LABEL  # noqa: E402

SERVICE = "churn_training"
MIN_ROWS = 50


def sdk():
    """Baton's Python SDK (see common/baton_sdk.py for how it is found)."""
    from baton_sdk import baton
    return baton


def split_of(customer_id: str, test_percent: int) -> str:
    bucket = int(hashlib.sha256(customer_id.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < test_percent else "train"


def main():
    bt.begin()
    baton = sdk()
    warehouse = contracts.warehouse_path()
    if not warehouse.is_file():
        bt.fail(f"no warehouse at {warehouse}: customer_data_pipeline has not loaded it yet")
    db = bt.sqlite_readonly(warehouse)
    customers = [row[0] for row in db.execute("SELECT customer_id FROM clean_customers ORDER BY customer_id")]
    db.close()

    as_of = bt.now_iso()
    entity_rows = [{"customer_id": customer, "event_timestamp": as_of} for customer in customers]
    try:
        training = baton.get_historical_features(SERVICE, entity_rows)
    except baton.BatonAPIError as error:
        bt.fail(f"the feature store could not build the training set: {error}")
    # A customer without a feature row (new since the last feature run, or expired) is left out.
    rows = [row for row in training if all(row.get(name) is not None for name in FEATURES + [LABEL])]

    labels = {row[LABEL] for row in rows}
    if len(rows) < MIN_ROWS or labels != {0, 1}:
        bt.fail(f"the training set as of {as_of} is unusable: {len(rows)} of {len(customers)} customers "
                f"with features, labels {sorted(labels)}")

    test_percent = bt.param_int("test_percent", 25)
    cols = ["customer_id"] + FEATURES + [LABEL, "split"]
    out = [dict({c: row[c] for c in cols[:-1]}, split=split_of(row["customer_id"], test_percent)) for row in rows]

    dest = bt.var_dir() / "training" / bt.partition_key() / "dataset.csv"
    tmp = bt.temp_path_for(dest)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(out)
    tmp.replace(dest)

    n_test = sum(1 for r in out if r["split"] == "test")
    pos = sum(r[LABEL] for r in out) / len(out)
    bt.log(f"point-in-time training set as of {as_of} from feature service {SERVICE}: {len(out)} customers "
           f"({len(out) - n_test} train / {n_test} test), churn rate {pos:.1%}")
    bt.write_output({
        "dataset_path": str(dest),
        "feature_date": as_of,
        "feature_service": SERVICE,
        "features": FEATURES,
        "label": LABEL,
        "rows": len(out),
        "train_rows": len(out) - n_test,
        "test_rows": n_test,
        "positive_rate": round(pos, 4),
    })


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Clean one extracted source into the clean layer of the data lake.

    python3 scripts/customer_data_pipeline/transform.py transactions|clickstream|crm

Reads the raw file named by the upstream extract task's output
(BATON_INPUTS["extract_<source>"]["path"]), then:

  * drops bad rows (missing ids, unparseable or negative amounts, bad dates,
    malformed JSON, anonymous events) and counts each reason,
  * removes duplicates (re-delivered rows, superseded CRM versions),
  * normalises types and formats (ISO 8601 UTC timestamps, upper-case ids,
    lower-case enums, numeric amounts, cleaned e-mails),

and writes a CSV to var/lake/clean/<source>/<logical date>/<source>.csv.
"""

import csv
import json
import math
import re
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402

COLUMNS = {
    "transactions": ["transaction_id", "customer_id", "amount", "created_at"],
    "clickstream": ["event_id", "customer_id", "session_id", "event_type", "ts"],
    "crm": ["customer_id", "crm_id", "name", "email", "country", "plan",
            "signup_date", "status", "last_modified_at"],
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


def parse_time(value):
    """Accept the formats the sources actually send; return ISO UTC or None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return bt.iso(datetime.fromtimestamp(value, tz=timezone.utc))   # epoch seconds
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            dt = datetime.strptime(value, fmt)
        except ValueError:
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return bt.iso(dt)
    return None


def parse_date(value):
    """Signup dates arrive as YYYY-MM-DD or US-style MM/DD/YYYY."""
    for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime((value or "").strip(), fmt).strftime("%Y-%m-%d")
        except ValueError:
            continue
    return None


def clean_transactions(path, dropped, fixed):
    seen, out = set(), []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            txn_id = (row.get("transaction_id") or "").strip()
            if txn_id in seen:
                dropped["duplicate"] += 1
                continue
            customer = (row.get("customer_id") or "").strip()
            if not customer:
                dropped["missing_customer_id"] += 1
                continue
            if customer != customer.upper():
                fixed["customer_id_upper_cased"] += 1
            raw_amount = (row.get("amount") or "").strip()
            try:
                amount = float(raw_amount.lstrip("$"))
            except ValueError:
                amount = float("nan")
            if math.isnan(amount) or math.isinf(amount):
                dropped["bad_amount"] += 1
                continue
            if amount <= 0:
                dropped["non_positive_amount"] += 1
                continue
            if raw_amount.startswith("$"):
                fixed["amount_currency_symbol_removed"] += 1
            created = parse_time(row.get("created_at"))
            if created is None:
                dropped["bad_date"] += 1
                continue
            if created != (row.get("created_at") or "").strip():
                fixed["timestamp_reformatted"] += 1
            seen.add(txn_id)
            out.append([txn_id, customer.upper(), f"{amount:.2f}", created])
    return out


def clean_clickstream(path, dropped, fixed):
    seen, out = set(), []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                dropped["malformed_json"] += 1
                continue
            event_id = event.get("event_id")
            if event_id in seen:
                dropped["duplicate"] += 1
                continue
            customer = (event.get("customer_id") or "").strip().upper()
            if not customer:
                dropped["anonymous_visitor"] += 1
                continue
            ts = parse_time(event.get("ts"))
            if ts is None:
                dropped["bad_timestamp"] += 1
                continue
            if isinstance(event.get("ts"), int):
                fixed["epoch_timestamp_converted"] += 1
            kind = str(event.get("event_type") or "unknown")
            if kind != kind.lower():
                fixed["event_type_lower_cased"] += 1
            seen.add(event_id)
            out.append([event_id, customer, event.get("session_id") or "", kind.lower(), ts])
    return out


def clean_crm(path, dropped, fixed):
    with open(path, encoding="utf-8") as f:
        response = json.load(f)
    if not response.get("done", True):
        bt.fail("CRM response is incomplete (done=false); paging is not implemented")
    latest = {}
    for rec in response.get("records", []):
        customer = (rec.get("Customer_Id__c") or "").strip().upper()
        if not customer:
            dropped["missing_customer_id"] += 1
            continue
        modified = parse_time(rec.get("LastModifiedDate")) or ""
        # Several versions of one customer: the most recently modified wins.
        if customer in latest:
            dropped["superseded_version"] += 1
            if latest[customer][0] >= modified:
                continue
        latest[customer] = (modified, rec)
    out = []
    for customer in sorted(latest):
        modified, rec = latest[customer]
        email = (rec.get("Email") or "").strip().lower()
        if email != (rec.get("Email") or ""):
            fixed["email_trimmed_lower_cased"] += 1
        if not EMAIL.match(email):
            fixed["invalid_email_nulled"] += 1
            email = ""
        signup = parse_date(rec.get("Signup_Date__c"))
        if signup != rec.get("Signup_Date__c"):
            fixed["signup_date_reformatted"] += 1
        status = (rec.get("Status__c") or "").strip().lower()   # active | cancelled
        if rec.get("Status__c") not in ("Active", "Cancelled"):
            fixed["status_case_fixed"] += 1
        out.append([customer, rec.get("Id") or "", (rec.get("Name") or "").strip(), email,
                    (rec.get("Country") or "").strip().upper(),
                    (rec.get("Plan__c") or "").strip().lower(),
                    signup or "", status, modified])
    return out


CLEANERS = {"transactions": clean_transactions, "clickstream": clean_clickstream,
            "crm": clean_crm}


def main():
    bt.begin()
    if len(sys.argv) != 2 or sys.argv[1] not in CLEANERS:
        bt.fail(f"usage: transform.py {'|'.join(CLEANERS)}")
    source = sys.argv[1]
    raw = bt.require_input(f"extract_{source}")

    dropped, fixed = Counter(), Counter()
    rows = CLEANERS[source](raw["path"], dropped, fixed)

    dest = bt.var_dir() / "lake" / "clean" / source / bt.partition_key() / f"{source}.csv"
    tmp = bt.temp_path_for(dest)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS[source])
        w.writerows(rows)
    tmp.replace(dest)

    rows_in = raw.get("records", len(rows) + sum(dropped.values()))
    bt.log(f"{source}: {rows_in} rows in, {len(rows)} rows out, "
           f"{sum(dropped.values())} dropped")
    for reason, n in sorted(dropped.items()):
        bt.log(f"  dropped {n:4d}  {reason}")
    for what, n in sorted(fixed.items()):
        bt.log(f"  fixed   {n:4d}  {what}")
    bt.write_output({
        "source": source,
        "path": str(dest),
        "columns": COLUMNS[source],
        "rows_in": rows_in,
        "rows_out": len(rows),
        "rows_dropped": sum(dropped.values()),
        "dropped": dict(sorted(dropped.items())),
        "normalised": dict(sorted(fixed.items())),
    })


if __name__ == "__main__":
    main()

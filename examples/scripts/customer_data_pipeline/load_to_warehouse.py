#!/usr/bin/env python3
"""Load the three clean datasets into the SQLite warehouse.

Needs the outputs of transform_transactions, transform_clickstream and
transform_crm (each names a clean CSV).  Builds a complete new warehouse file
and swaps it in with an atomic rename, so readers (the feature pipeline)
always see either the previous load or this one, never half of each:

    var/warehouse/warehouse.sqlite
      transactions     one row per clean transaction
      clickstream      one row per clean click event
      crm              one row per customer (latest CRM version)
      clean_customers  the hand-off table: CRM attributes joined with each
                       customer's purchase and browsing aggregates
      _meta            schema_version, loaded_at, data interval, data_as_of, ...

The task `produces: [clean_customers]` (see pipelines/datasets.yaml): when it
succeeds Baton records an update of the dataset with this task's output as
metadata (record_count, schema_version, ...) and publishes
`dataset.clean_customers.updated`, which wakes the tasks that require it.
"""

import csv
import os
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402

TABLES = {
    "transactions": ("transform_transactions", [
        ("transaction_id", "TEXT PRIMARY KEY"), ("customer_id", "TEXT NOT NULL"),
        ("amount", "REAL NOT NULL"), ("created_at", "TEXT NOT NULL")]),
    "clickstream": ("transform_clickstream", [
        ("event_id", "TEXT PRIMARY KEY"), ("customer_id", "TEXT NOT NULL"),
        ("session_id", "TEXT"), ("event_type", "TEXT"), ("ts", "TEXT NOT NULL")]),
    "crm": ("transform_crm", [
        ("customer_id", "TEXT PRIMARY KEY"), ("crm_id", "TEXT"), ("name", "TEXT"),
        ("email", "TEXT"), ("country", "TEXT"), ("plan", "TEXT"), ("signup_date", "TEXT"),
        ("status", "TEXT"), ("last_modified_at", "TEXT")]),
}

CLEAN_CUSTOMERS_SQL = """
INSERT INTO clean_customers
SELECT c.customer_id, c.name, c.email, c.country, c.plan, c.signup_date, c.status,
       COALESCE(t.total_spend, 0), COALESCE(t.txn_count, 0),
       t.first_purchase_at, t.last_purchase_at,
       COALESCE(k.clicks, 0), COALESCE(k.sessions, 0), k.last_seen_at
FROM crm AS c
LEFT JOIN (SELECT customer_id, ROUND(SUM(amount), 2) AS total_spend, COUNT(*) AS txn_count,
                  MIN(created_at) AS first_purchase_at, MAX(created_at) AS last_purchase_at
           FROM transactions GROUP BY customer_id) AS t USING (customer_id)
LEFT JOIN (SELECT customer_id, COUNT(*) AS clicks, COUNT(DISTINCT session_id) AS sessions,
                  MAX(ts) AS last_seen_at
           FROM clickstream GROUP BY customer_id) AS k USING (customer_id)
ORDER BY c.customer_id
"""


def load_csv(db, table, columns, path):
    names = [c for c, _ in columns]
    db.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in columns)})")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [tuple(r[c] if r[c] != "" else None for c in names) for r in reader]
    db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(names))})", rows)
    return len(rows)


def main():
    bt.begin()
    inputs = {table: bt.require_input(task) for table, (task, _) in TABLES.items()}

    final = contracts.warehouse_path()
    tmp = bt.temp_path_for(final)
    if tmp.exists():
        tmp.unlink()
    db = sqlite3.connect(str(tmp))
    counts = {}
    with db:
        for table, (_, columns) in TABLES.items():
            counts[table] = load_csv(db, table, columns, inputs[table]["path"])
        cols = ", ".join(f"{c} {t}" for c, t in contracts.CLEAN_CUSTOMERS_COLUMNS)
        db.execute(f"CREATE TABLE clean_customers ({cols}, PRIMARY KEY (customer_id))")
        db.execute(CLEAN_CUSTOMERS_SQL)
        counts["clean_customers"] = db.execute("SELECT COUNT(*) FROM clean_customers").fetchone()[0]

        orphans = db.execute("SELECT COUNT(*) FROM transactions WHERE customer_id NOT IN "
                             "(SELECT customer_id FROM crm)").fetchone()[0]
        # The data describes the world up to its newest event: features are
        # measured from this "as of" time (the next midnight), not the wall clock.
        newest = db.execute("SELECT MAX(m) FROM (SELECT MAX(created_at) AS m FROM transactions "
                            "UNION ALL SELECT MAX(ts) FROM clickstream)").fetchone()[0]
        as_of = bt.parse_ts(newest).replace(hour=0, minute=0, second=0) + timedelta(days=1)

        start, end = bt.data_interval()
        meta = {
            "schema_version": contracts.SCHEMA_VERSION,
            "loaded_at": bt.now_iso(),
            "logical_date": bt.logical_date(),
            "data_interval_start": start,
            "data_interval_end": end,
            "run_id": bt.run_id(),
            "data_as_of": bt.iso(as_of),
        }
        db.execute("CREATE TABLE _meta (key TEXT PRIMARY KEY, value TEXT)")
        db.executemany("INSERT INTO _meta VALUES (?, ?)", sorted(meta.items()))
    db.close()
    os.replace(tmp, final)   # atomic swap: readers see the old or the new warehouse

    for table, n in counts.items():
        bt.log(f"loaded {n:5d} rows into {table}")
    if orphans:
        bt.log(f"note: {orphans} transactions belong to customers unknown to the CRM "
               f"(kept in transactions, not in clean_customers)")
    bt.write_output({
        # Read by Baton as the dataset update's metadata: `schema_version` is
        # checked against consumers' `schema:` ranges.
        "record_count": counts["clean_customers"],
        "schema_version": contracts.SCHEMA_VERSION,
        "warehouse_path": str(final),
        "tables": counts,
        "orphan_transactions": orphans,
        "data_as_of": meta["data_as_of"],
        "loaded_at": meta["loaded_at"],
    })


if __name__ == "__main__":
    main()

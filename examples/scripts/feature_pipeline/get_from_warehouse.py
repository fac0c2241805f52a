#!/usr/bin/env python3
"""Read the clean_customers table from the warehouse - after checking the SLA.

This is the hand-off from Data Engineering to ML.  Before using the data the
task checks the contract the data team publishes (scripts/common/contracts.py):

  * the warehouse exists at all (on first start both hourly pipelines start
    together, so this task fails and Baton retries it until the load is done),
  * the schema's major version is the one this code was written for,
  * the data is fresh enough (loaded less than max_staleness_hours ago).

It then snapshots the table to var/feature_pipeline/<logical date>/ so the
next task works on a consistent copy even if a new load lands meanwhile.
"""

import csv
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402

NOT_LOADED = "warehouse not loaded yet: run customer_data_pipeline first"


def main():
    bt.begin()
    wh = contracts.warehouse_path()
    if not wh.is_file():
        bt.fail(f"{NOT_LOADED} (no {wh}; attempt {bt.attempt()})")
    db = bt.sqlite_readonly(wh)
    db.row_factory = sqlite3.Row
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "clean_customers" not in tables or "_meta" not in tables:
        bt.fail(f"{NOT_LOADED} ({wh} has no clean_customers table)")
    meta = dict(db.execute("SELECT key, value FROM _meta").fetchall())

    # Contract check 1: schema version (same major version = compatible).
    expected, actual = contracts.SCHEMA_VERSION, meta.get("schema_version", "?")
    if actual.split(".")[0] != expected.split(".")[0]:
        bt.fail(f"clean_customers schema_version {actual} is incompatible with {expected}")

    # Contract check 2: freshness (the lecture's check_data_freshness).
    max_hours = bt.param_float("max_staleness_hours", contracts.DATA_SLA["max_staleness_hours"])
    age = datetime.now(timezone.utc) - bt.parse_ts(meta["loaded_at"])
    age_hours = age.total_seconds() / 3600
    if age_hours > max_hours:
        bt.fail(f"DataSLAViolation: clean_customers is too stale: loaded {age_hours:.1f}h ago "
                f"(at {meta['loaded_at']}), the SLA allows {max_hours:g}h; "
                f"is customer_data_pipeline running?")

    rows = db.execute("SELECT * FROM clean_customers ORDER BY customer_id").fetchall()
    db.close()
    if not rows:
        bt.fail("clean_customers is empty")

    dest = bt.var_dir() / "feature_pipeline" / bt.partition_key() / "clean_customers.csv"
    tmp = bt.temp_path_for(dest)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(rows[0].keys())
        w.writerows(tuple(r) for r in rows)
    tmp.replace(dest)

    bt.log(f"read {len(rows)} customers from clean_customers (schema {actual}, "
           f"loaded {age_hours * 60:.0f} min ago by run {meta.get('run_id')})")
    bt.write_output({
        "snapshot_path": str(dest),
        "rows": len(rows),
        "schema_version": actual,
        "loaded_at": meta["loaded_at"],
        "data_as_of": meta["data_as_of"],
        "staleness_minutes": round(age_hours * 60, 1),
        "source_run_id": meta.get("run_id"),
    })


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Read the clean_customers table from the warehouse.

This is the hand-off from Data Engineering to ML.  The contract is checked by
Baton before this task starts (`requires:` in pipelines/feature_pipeline.yaml):
clean_customers was updated by customer_data_pipeline at most 2h ago, with a
schema version in ">=2.0 <3".  If not, the task waits for a fresh update (up
to 5 minutes) and then fails with a DataSLAViolation, without running this
script.  The script itself only double-checks what Baton cannot see: that the
table is really there and not empty.

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


def main():
    bt.begin()
    wh = contracts.warehouse_path()
    if not wh.is_file():
        # Baton said clean_customers was updated, so this is a real error
        # (e.g. BATON_EXAMPLES_VAR differs between the pipelines).
        bt.fail(f"clean_customers was reported updated, but {wh} does not exist")
    db = bt.sqlite_readonly(wh)
    db.row_factory = sqlite3.Row
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "clean_customers" not in tables or "_meta" not in tables:
        bt.fail(f"{wh} has no clean_customers table")
    meta = dict(db.execute("SELECT key, value FROM _meta").fetchall())
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

    age = datetime.now(timezone.utc) - bt.parse_ts(meta["loaded_at"])
    bt.log(f"read {len(rows)} customers from clean_customers (schema {meta.get('schema_version')}, "
           f"loaded {age.total_seconds() / 60:.0f} min ago by run {meta.get('run_id')})")
    bt.write_output({
        "snapshot_path": str(dest),
        "rows": len(rows),
        "schema_version": meta.get("schema_version"),
        "loaded_at": meta["loaded_at"],
        "data_as_of": meta["data_as_of"],
        "staleness_minutes": round(age.total_seconds() / 60, 1),
        "source_run_id": meta.get("run_id"),
    })


if __name__ == "__main__":
    main()

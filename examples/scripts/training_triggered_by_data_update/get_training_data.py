#!/usr/bin/env python3
"""The lecture's get_training_data() for the event-triggered training flow.

    python3 scripts/training_triggered_by_data_update/get_training_data.py --record-count N

Baton has already checked the data contract before starting this task
(`requires: [{dataset: clean_customers, max_staleness: 2h}]`), which replaces
the lecture's

    if check_data_freshness("clean_customers") > timedelta(hours=2):
        raise DataSLAViolation("Data is too stale")

`--record-count` is the record_count of the data.customers.updated event
that started the run (`{{ event.payload.record_count }}`).  The task logs it,
loads clean_customers from the warehouse, computes the churn features (the
feature pipeline's code) and writes a train/test split (model_training_flow's
split) to var/triggered_training/<logical date>/dataset.csv.
"""

import argparse
import csv
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCRIPTS / "common"))
sys.path.insert(0, str(SCRIPTS / "model_training_flow"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402
from churn_features import FEATURES, LABEL, compute_features  # noqa: E402
from create_features import split_of  # noqa: E402


def main():
    bt.begin()
    ap = argparse.ArgumentParser()
    ap.add_argument("--record-count", default="unknown")
    args = ap.parse_args()
    bt.log(f"New data available: {args.record_count} records")

    wh = contracts.warehouse_path()
    if not wh.is_file():
        bt.fail(f"clean_customers was reported updated, but {wh} does not exist")
    db = bt.sqlite_readonly(wh)
    db.row_factory = lambda cursor, row: {c[0]: v for c, v in zip(cursor.description, row)}
    meta = {r["key"]: r["value"] for r in db.execute("SELECT key, value FROM _meta")}
    customers = db.execute("SELECT * FROM clean_customers ORDER BY customer_id").fetchall()
    db.close()

    as_of = bt.parse_ts(meta["data_as_of"])
    test_percent = 25
    rows = [dict(compute_features(c, as_of), split=split_of(c["customer_id"], test_percent))
            for c in customers]
    if len(rows) < 50 or {r[LABEL] for r in rows} != {0, 1}:
        bt.fail(f"clean_customers is unusable for training: {len(rows)} rows")

    folder = bt.var_dir() / "triggered_training"
    dest = folder / bt.partition_key() / "dataset.csv"
    tmp = bt.temp_path_for(dest)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["customer_id"] + FEATURES + [LABEL, "split"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(dest)
    bt.prune_partitions(folder, keep=24)   # one folder per event: keep the newest

    n_test = sum(1 for r in rows if r["split"] == "test")
    bt.log(f"training data: {len(rows)} customers from clean_customers "
           f"(schema {meta.get('schema_version')}, loaded at {meta.get('loaded_at')}), "
           f"{len(rows) - n_test} train / {n_test} test")
    bt.write_output({
        "dataset_path": str(dest),
        "feature_date": meta["data_as_of"],
        "rows": len(rows),
        "event_record_count": args.record_count,
        "loaded_at": meta.get("loaded_at"),
    })


if __name__ == "__main__":
    main()

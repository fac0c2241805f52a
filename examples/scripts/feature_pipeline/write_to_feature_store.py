#!/usr/bin/env python3
"""Write the computed features to the feature store.

The feature store is a SQLite file, var/feature_store/features.sqlite, with
one table:

    customer_features(feature_date, customer_id, <features...>, churned,
                      data_as_of, run_id, written_at)

`feature_date` is the run's logical date.  Each run replaces the rows of its
own feature_date inside one transaction (delete + insert), so re-running an
interval never duplicates rows and readers never see half a feature set.
Only the newest `keep_feature_dates` feature sets are kept.

The task `produces: [customer_features]`: its success records an update of
the dataset with this task's output (record_count, feature_date, ...) as
metadata, which model_training_flow's create_features requires.
"""

import csv
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402
from churn_features import FEATURES, LABEL  # noqa: E402


def main():
    bt.begin()
    upstream = bt.require_input("compute_features")
    with open(upstream["path"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    feature_date = bt.logical_date()
    written_at = bt.now_iso()
    store = contracts.feature_store_path()
    store.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(store), timeout=30)
    cols = ", ".join(f"{c} REAL NOT NULL" for c in FEATURES)
    db.execute(f"""CREATE TABLE IF NOT EXISTS customer_features (
        feature_date TEXT NOT NULL, customer_id TEXT NOT NULL, {cols},
        {LABEL} INTEGER NOT NULL, data_as_of TEXT, run_id TEXT, written_at TEXT,
        PRIMARY KEY (feature_date, customer_id))""")
    keep = bt.param_int("keep_feature_dates", 48)
    names = ["feature_date", "customer_id"] + FEATURES + [LABEL, "data_as_of", "run_id", "written_at"]
    with db:   # one transaction
        db.execute("DELETE FROM customer_features WHERE feature_date = ?", (feature_date,))
        db.executemany(
            f"INSERT INTO customer_features ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [(feature_date, r["customer_id"], *[float(r[c]) for c in FEATURES], int(r[LABEL]),
              upstream["data_as_of"], bt.run_id(), written_at) for r in rows])
        db.execute("""DELETE FROM customer_features WHERE feature_date NOT IN (
            SELECT DISTINCT feature_date FROM customer_features
            ORDER BY feature_date DESC LIMIT ?)""", (keep,))
    sets = db.execute("SELECT COUNT(DISTINCT feature_date) FROM customer_features").fetchone()[0]
    db.close()

    # The per-run working copies in var/feature_pipeline/ are no longer needed.
    bt.prune_partitions(bt.var_dir() / "feature_pipeline", keep=24)

    bt.log(f"wrote {len(rows)} feature rows for feature_date={feature_date} to {store} "
           f"({sets} feature sets stored)")
    duration = bt.report_pipeline_duration(owner="ml_engineering")
    bt.write_output({
        "record_count": len(rows),          # metadata of the customer_features update
        "feature_store": str(store),
        "table": "customer_features",
        "feature_date": feature_date,
        "rows": len(rows),
        "feature_sets_stored": sets,
        "pipeline_duration_s": duration,
    })


if __name__ == "__main__":
    main()

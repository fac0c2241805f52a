#!/usr/bin/env python3
"""Build the training dataset from the feature store.

Loads the newest feature set from var/feature_store/features.sqlite (written
by feature_pipeline), splits customers into train and test by a stable hash
of the customer id (the same customer always lands on the same side), and
writes var/training/<logical date>/dataset.csv for the three trainers.

Baton starts this task only once feature_pipeline has updated the dataset
customer_features within the last 3 hours (`requires:` in
pipelines/model_training_flow.yaml); on the first start it waits for that
update.  The checks below guard against a store that is still unusable.
"""

import csv
import hashlib
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402
from churn_features import FEATURES, LABEL  # noqa: E402

NOT_READY = "feature store is empty although customer_features was reported updated"
MIN_ROWS = 50


def split_of(customer_id: str, test_percent: int) -> str:
    bucket = int(hashlib.sha256(customer_id.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < test_percent else "train"


def main():
    bt.begin()
    store = contracts.feature_store_path()
    if not store.is_file():
        bt.fail(f"{NOT_READY} (no {store}; attempt {bt.attempt()})")
    db = bt.sqlite_readonly(store)
    db.row_factory = sqlite3.Row
    try:
        latest = db.execute("SELECT MAX(feature_date) FROM customer_features").fetchone()[0]
    except sqlite3.OperationalError:
        latest = None
    if latest is None:
        bt.fail(f"{NOT_READY} (no feature sets in {store})")
    rows = db.execute("SELECT * FROM customer_features WHERE feature_date = ? ORDER BY customer_id",
                      (latest,)).fetchall()
    db.close()

    labels = {r[LABEL] for r in rows}
    if len(rows) < MIN_ROWS or labels != {0, 1}:
        bt.fail(f"feature set {latest} is unusable: {len(rows)} rows, labels {sorted(labels)}")

    test_percent = bt.param_int("test_percent", 25)
    cols = ["customer_id"] + FEATURES + [LABEL, "split"]
    out = [dict({c: r[c] for c in cols[:-1]}, split=split_of(r["customer_id"], test_percent))
           for r in rows]

    dest = bt.var_dir() / "training" / bt.partition_key() / "dataset.csv"
    tmp = bt.temp_path_for(dest)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(out)
    tmp.replace(dest)

    n_test = sum(1 for r in out if r["split"] == "test")
    pos = sum(r[LABEL] for r in out) / len(out)
    bt.log(f"training dataset from feature set {latest}: {len(out)} customers "
           f"({len(out) - n_test} train / {n_test} test), churn rate {pos:.1%}")
    bt.write_output({
        "dataset_path": str(dest),
        "feature_date": latest,
        "features": FEATURES,
        "label": LABEL,
        "rows": len(out),
        "train_rows": len(out) - n_test,
        "test_rows": n_test,
        "positive_rate": round(pos, 4),
    })


if __name__ == "__main__":
    main()

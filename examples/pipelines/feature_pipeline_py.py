"""The lecture's feature pipeline ("could be DE or ML"), written with Baton's Python SDK.

`feature_pipeline()` at the bottom is the lecture's code; the tasks above it fill in its
helpers, like feature_pipeline.yaml does with the same feature definitions: read the
clean_customers_py hand-off table (Baton checks the contract first: fresh, schema 2.x), compute
per-customer churn features, and write them to Baton's feature store with the SDK's
write_to_feature_store (feature view customer_features_py in features_py.yaml; the committed
batch is an update of that dataset), where model_training_flow_py builds its training set with a
point-in-time join.
"""

import csv
import os
import sqlite3
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLES / "scripts" / "common"))

import baton_task as bt  # noqa: E402
import sdk_example as ex  # noqa: E402
from baton import dag, task, write_to_feature_store as store_features  # noqa: E402
from churn_features import FEATURES, LABEL, compute_features as feature_row  # noqa: E402


# Get clean data (from DE). Baton checks the contract right before the task starts; on the
# first start the data pipeline has not loaded yet, so the task waits (up to 5 minutes) for
# the update instead of failing.
@task(requires=[{"dataset": "clean_customers_py", "max_staleness": "2h", "schema": ">=2.0 <3",
                 "on_violation": "wait", "wait_timeout": "5m"}],
      retries=2, retry_delay="5s", timeout="1m")
def get_from_warehouse():
    ex.begin()
    db = bt.sqlite_readonly(ex.warehouse_path())
    db.row_factory = sqlite3.Row
    meta = dict(db.execute("SELECT key, value FROM _meta").fetchall())
    rows = db.execute("SELECT * FROM clean_customers ORDER BY customer_id").fetchall()
    db.close()
    if not rows:
        raise ValueError("clean_customers is empty")
    # The rows go through a file: a task's result is capped at 64 KiB.
    snapshot = ex.partition_dir("feature_pipeline") / "clean_customers.csv"
    tmp = bt.temp_path_for(snapshot)
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(rows[0].keys())
        writer.writerows(tuple(row) for row in rows)
    os.replace(tmp, snapshot)
    print(f"read {len(rows)} customers (schema {meta['schema_version']}, loaded {meta['loaded_at']})")
    return {"snapshot_path": str(snapshot), "rows": len(rows), "data_as_of": meta["data_as_of"],
            "schema_version": meta["schema_version"]}


# Create ML features (ML expertise needed)
@task(timeout="2m")
def compute_features(clean_data):
    ex.begin()
    as_of = bt.parse_ts(clean_data["data_as_of"])
    with open(clean_data["snapshot_path"], newline="", encoding="utf-8") as handle:
        rows = [feature_row(row, as_of) for row in csv.DictReader(handle)]
    path = ex.partition_dir("feature_pipeline") / "features.csv"
    tmp = bt.temp_path_for(path)
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["customer_id"] + FEATURES + [LABEL], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    churn_rate = sum(row[LABEL] for row in rows) / len(rows)
    print(f"computed {len(FEATURES)} features for {len(rows)} customers; churn rate {churn_rate:.1%}")
    return {"path": str(path), "rows": len(rows), "churn_rate": round(churn_rate, 4),
            "data_as_of": clean_data["data_as_of"]}


# Store in feature store (infrastructure). Its success records an update of
# customer_features_py with this dict as metadata.
@task(produces=["customer_features_py"], retries=2, retry_delay="5s", timeout="1m")
def write_to_feature_store(features):
    ex.begin()
    with open(features["path"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    feature_date = bt.logical_date()
    # Baton's feature store: every row checked, one all-or-nothing batch, each valid from the
    # end of the run's data interval (a re-run interval overwrites its rows, never duplicates).
    valid_from = bt.data_interval()[1]
    integers = {"txn_count", "clicks", "sessions", LABEL}
    written = store_features("customer_features_py", [
        {"customer_id": row["customer_id"], "event_timestamp": valid_from,
         **{name: (int(float(row[name])) if name in integers else float(row[name])) for name in FEATURES + [LABEL]}}
        for row in rows])
    print(f"wrote {len(rows)} feature rows for feature_date={feature_date} to feature view customer_features_py: "
          f"{written['inserted']} new, {written['overwritten']} overwritten")
    ex.report_duration(owner="ml_engineering")
    return {"record_count": len(rows), "feature_date": feature_date, "feature_view": "customer_features_py"}


# Feature Pipeline - Could be DE or ML
@dag(schedule="@hourly", owner="ml_engineering")
def feature_pipeline():
    # Get clean data (from DE)
    clean_data = get_from_warehouse()

    # Create ML features (ML expertise needed)
    features = compute_features(clean_data)

    # Store in feature store (infrastructure)
    write_to_feature_store(features)

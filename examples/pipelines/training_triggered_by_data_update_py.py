"""The lecture's event-based hand-off and SLA check, written with Baton's Python SDK.

The flow and `get_training_data` at the bottom are the lecture's code, for this version's
dataset and event names (clean_customers_py, data.customers_py.updated, published by
customer_data_pipeline_py); the helpers above them are filled in. Each event starts one run:
`train_model` checks the data contract through `get_training_data` (a plain call inside a task
runs the function itself) and trains a quick churn model on the new data.

Published before any load, the event shows the lecture's DataSLAViolation:

    baton events publish data.customers_py.updated --data '{"record_count": 5}'

fails train_model with `DataSLAViolation: dataset clean_customers_py has never been updated
(owner data_engineering)`.
"""

import logging
import sqlite3
import sys
import time
from datetime import timedelta
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLES / "scripts" / "common"))
sys.path.insert(0, str(EXAMPLES / "scripts" / "model_training_flow"))

import baton_task as bt  # noqa: E402
import sdk_example as ex  # noqa: E402
import train_lightgbm as trainer  # noqa: E402
import training  # noqa: E402
from baton import DataSLAViolation, EventTrigger, check_data_freshness, flow, get_context, task  # noqa: E402
from churn_features import FEATURES, LABEL, compute_features  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(message)s")
logger = logging.getLogger("training_triggered_by_data_update_py")


def load_data(dataset):
    """The rows of the dataset's table, with the features the model uses."""
    db = bt.sqlite_readonly(ex.warehouse_path())
    db.row_factory = sqlite3.Row
    table = dataset[:-len("_py")] if dataset.endswith("_py") else dataset
    as_of = bt.parse_ts(dict(db.execute("SELECT key, value FROM _meta").fetchall())["data_as_of"])
    rows = [compute_features(dict(row), as_of) for row in db.execute(f"SELECT * FROM {table}")]
    db.close()
    return rows


@task(timeout="2m")
def train_model():
    ex.begin()
    event = get_context().event or {}
    logger.info(f"run started by {event.get('name')} ({event.get('id')}) with {event.get('payload', {}).get('record_count')} records")
    rows = get_training_data()
    started = time.time()
    path = ex.partition_dir("triggered_training") / "dataset.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(",".join(["customer_id"] + FEATURES + [LABEL, "split"]) + "\n")
        for row in rows:
            values = [row["customer_id"]] + [str(row[name]) for name in FEATURES] + [str(row[LABEL]),
                                                                                    ex.split_of(row["customer_id"])]
            handle.write(",".join(values) + "\n")
    data = training.Dataset(path)
    result = training.evaluate_and_save("quick_model", trainer.fit(data), data, started,
                                        {"feature_date": bt.logical_date()}, ex.partition_dir("triggered_training"),
                                        experiment="churn_triggered_training_py")
    logger.info(f"quick model on {len(rows)} customers: f1={result['f1']:.3f} auc={result['auc']:.3f}")
    return {"rows": len(rows), "f1": result["f1"], "auc": result["auc"], "model_path": result["model_path"]}


# ML team depends on it
@task
def get_training_data():
    # Check SLA before proceeding
    freshness = check_data_freshness("clean_customers_py")
    if freshness > timedelta(hours=2):
        raise DataSLAViolation("Data is too stale")
    return load_data("clean_customers_py")


# ML Pipeline subscribes
@flow(triggers=[EventTrigger("data.customers_py.updated")], owner="ml_engineering")
def training_triggered_by_data_update(event):
    logger.info(f"New data available: {event['record_count']} records")
    train_model()

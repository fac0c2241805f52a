"""The lecture's ML Engineering flow, written with Baton's Python SDK.

`model_training_flow()` at the bottom is the lecture's code; the tasks above it fill in its
helpers with the trainers of model_training_flow.yaml (pure-Python stand-ins for XGBoost,
LightGBM and a neural net, imported from scripts/): build a training set with a point-in-time
join on Baton's feature store (service churn_training_py), train the three candidates in parallel (each an experiment run with its params,
metrics and model file), select the best by F1 and register it as a new version of `churn_py`
in Baton's model registry, approving it for deployment when F1 >= 0.6.
"""

import csv
import os
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLES / "scripts" / "common"))
sys.path.insert(0, str(EXAMPLES / "scripts" / "model_training_flow"))

import baton_task as bt  # noqa: E402
import sdk_example as ex  # noqa: E402
import train_lightgbm as lightgbm_trainer  # noqa: E402
import train_neural_net as neural_net_trainer  # noqa: E402
import train_xgboost as xgboost_trainer  # noqa: E402
import training  # noqa: E402
from baton import flow, get_historical_features, task  # noqa: E402
from baton import register_model as register_in_registry  # noqa: E402
from churn_features import FEATURES, LABEL  # noqa: E402

# What the flow trains on: the feature store's dataset, which the feature pipeline updates.
raw_data = "customer_features_py"
SELECTION_METRIC = "f1"
# Apart from the YAML version's `churn`, so the two deployment pipelines do not take turns.
REGISTERED_MODEL = "churn_py"
EXPERIMENT = "churn_training_py"
APPROVAL_THRESHOLD = 0.6


# Needs a feature set written at most 3h ago; on the first start it waits for the feature
# pipeline's update.
@task(requires=[{"dataset": "customer_features_py", "max_staleness": "3h", "on_violation": "wait",
                 "wait_timeout": "5m"}], retries=1, retry_delay="5s", timeout="1m")
def create_features(dataset):
    """The training set from Baton's feature store: a point-in-time join of every warehouse
    customer, as of now, with feature service churn_training_py (features_py.yaml)."""
    ex.begin()
    db = bt.sqlite_readonly(ex.warehouse_path())
    customers = [row[0] for row in db.execute("SELECT customer_id FROM clean_customers ORDER BY customer_id")]
    db.close()
    as_of = bt.now_iso()
    training = get_historical_features(
        "churn_training_py", [{"customer_id": customer, "event_timestamp": as_of} for customer in customers])
    # A customer without a feature row (new since the last feature run, or expired) is left out.
    rows = [row for row in training if all(row.get(name) is not None for name in FEATURES + [LABEL])]
    if len(rows) < 50 or {row[LABEL] for row in rows} != {0, 1}:
        raise ValueError(f"the training set as of {as_of} is unusable: {len(rows)} of {len(customers)} customers with features")
    columns = ["customer_id"] + FEATURES + [LABEL, "split"]
    out = [dict({name: row[name] for name in columns[:-1]}, split=ex.split_of(row["customer_id"])) for row in rows]
    path = ex.partition_dir("training") / "dataset.csv"
    tmp = bt.temp_path_for(path)
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(out)
    os.replace(tmp, path)
    test_rows = sum(1 for row in out if row["split"] == "test")
    print(f"point-in-time training set from {dataset} as of {as_of}: {len(out) - test_rows} train / {test_rows} test")
    return {"dataset_path": str(path), "feature_date": as_of, "rows": len(out)}


def _train(name, fit, features):
    ex.begin()
    started = time.time()
    data = training.Dataset(features["dataset_path"])
    model_dir = ex.partition_dir("training", "models")
    result = training.evaluate_and_save(name, fit(data), data, started, features, model_dir,
                                        experiment=EXPERIMENT)
    print(f"{name}: f1={result['f1']:.3f} auc={result['auc']:.3f} accuracy={result['accuracy']:.3f}")
    return result


@task(timeout="5m")
def train_xgboost(features):
    return _train("xgboost", xgboost_trainer.fit, features)


@task(timeout="5m")
def train_lightgbm(features):
    return _train("lightgbm", lightgbm_trainer.fit, features)


@task(timeout="5m")
def train_neural_net(features):
    return _train("neural_net", neural_net_trainer.fit, features)


@task(timeout="1m")
def evaluate_and_select(candidates):
    ex.begin()
    board = sorted(candidates, key=lambda model: (-model[SELECTION_METRIC], -model["auc"], model["model"]))
    for model in board:
        print(f"{model['model']:12s} {model['algorithm']:25s} f1={model['f1']:.3f} auc={model['auc']:.3f}"
              + ("  <- best" if model is board[0] else ""))
    best = board[0]
    return {"model": best["model"], "algorithm": best["algorithm"], "model_path": best["model_path"],
            "tracking_run_id": best["tracking_run_id"],
            "selection_metric": SELECTION_METRIC, "value": best[SELECTION_METRIC],
            "metrics": {name: best[name] for name in ("accuracy", "f1", "auc", "precision", "recall")},
            "leaderboard": [{"model": model["model"], SELECTION_METRIC: model[SELECTION_METRIC]} for model in board]}


@task(timeout="1m")
def register_model(best_model):
    """Registers the best candidate's run as a new version of `churn_py` in Baton's model
    registry, and approves it for deployment (alias `champion`) when it clears the bar."""
    ex.begin()
    approved = best_model["value"] >= APPROVAL_THRESHOLD
    reason = f"{best_model['selection_metric']}={best_model['value']:.3f} {'>=' if approved else '<'} {APPROVAL_THRESHOLD}"
    version = register_in_registry(
        REGISTERED_MODEL, run_id=best_model["tracking_run_id"], artifact_path="model",
        description=f"{best_model['model']} ({best_model['algorithm']})", approve=approved, note=reason)
    print(f"registered {REGISTERED_MODEL} v{version['version']} ({best_model['model']}); "
          + ("approved for deployment" if approved else f"not approved ({reason})"))
    ex.report_duration(owner="ml_engineering")
    return {"version": version["version"], "approved": approved, "model_uri": version["uri"]}


# ML Engineering Pipeline
# The lecture's bare @flow runs on demand (Prefect); here it also runs daily, so it runs once
# when Baton starts, like model_training_flow.yaml.
@flow(schedule="@daily", owner="ml_engineering")
def model_training_flow():
    # Feature engineering
    features = create_features(raw_data)

    # Experiment with different models
    model_a = train_xgboost(features)
    model_b = train_lightgbm(features)
    model_c = train_neural_net(features)

    # Evaluate and select best
    best_model = evaluate_and_select([model_a, model_b, model_c])

    # Register for deployment
    register_model(best_model)

"""Shared plumbing for the three trainers: load the split dataset, fit the
input scaling, evaluate on the held-out split, save the model and report."""

import csv
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import churn_model  # noqa: E402
import metrics  # noqa: E402
import registry  # noqa: E402


class Dataset:
    def __init__(self, path):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        self.features = [c for c in rows[0] if c not in ("customer_id", "churned", "split")]
        self.train = [r for r in rows if r["split"] == "train"]
        self.test = [r for r in rows if r["split"] == "test"]
        self.train_y = [int(r["churned"]) for r in self.train]
        self.test_y = [int(r["churned"]) for r in self.test]


def load_dataset(upstream: str = "create_features") -> "Dataset":
    """The split dataset named by the upstream task's output `dataset_path`."""
    return Dataset(bt.require_input(upstream)["dataset_path"])


def fit_preprocess(ds: Dataset) -> dict:
    """log1p on every (non-negative, skewed) feature, then standardisation
    with the training split's mean and standard deviation."""
    pre = {"log1p": list(ds.features), "mean": [], "std": []}
    for name in ds.features:
        values = [math.log1p(max(0.0, float(r[name]))) for r in ds.train]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
        pre["mean"].append(mean)
        pre["std"].append(std)
    return pre


def finish(task_label: str, model: dict, ds: Dataset, started: float,
           upstream: str = "create_features", model_dir: Path = None, experiment: str = registry.EXPERIMENT) -> None:
    """Pick the decision threshold on train, evaluate on test, save, report.

    The model goes to model_dir (default var/training/<logical date>/models).
    """
    bt.write_output(evaluate_and_save(task_label, model, ds, started, bt.require_input(upstream), model_dir, experiment))


def evaluate_and_save(task_label: str, model: dict, ds: Dataset, started: float, source: dict,
                      model_dir: Path = None, experiment: str = registry.EXPERIMENT) -> dict:
    """finish() without Baton's files: `source` is the dataset's producer output (with
    feature_date); returns the output (test metrics, model path)."""
    train_p = [churn_model.predict_proba(model, r) for r in ds.train]
    model["threshold"] = metrics.best_f1_threshold(ds.train_y, train_p)
    test_p = [churn_model.predict_proba(model, r) for r in ds.test]
    report = metrics.classification_report(ds.test_y, test_p, model["threshold"])
    train_report = metrics.classification_report(ds.train_y, train_p, model["threshold"])
    model.update({
        "name": task_label,
        "features": ds.features,
        "trained_on": {"feature_date": source["feature_date"], "train_rows": len(ds.train),
                       "test_rows": len(ds.test), "run_id": bt.run_id(),
                       "logical_date": bt.logical_date()},
        "metrics": report,
    })
    model_dir = model_dir or bt.var_dir() / "training" / bt.partition_key() / "models"
    path = Path(model_dir) / f"{task_label}.json"
    bt.atomic_write_json(path, model)

    seconds = round(time.time() - started, 3)
    # Each candidate is an experiment run: params, test metrics and the model file, compared
    # side by side in Baton's UI (Experiments) or with the MLflow client.
    # The drift baseline: what the model saw in training (its inputs) and what it answered.
    train_rows = [{name: row[name] for name in ds.features} for row in ds.train]
    tracking_run_id = registry.track_candidate(task_label, model, report, source, path, experiment=experiment,
                                               baseline=(train_rows, train_p))
    bt.log(f"{task_label} ({model['algorithm']}) trained in {seconds:.2f}s on {len(ds.train)} rows")
    bt.log(f"  train: accuracy={train_report['accuracy']:.3f} f1={train_report['f1']:.3f} "
           f"auc={train_report['auc']:.3f}")
    bt.log(f"  test:  accuracy={report['accuracy']:.3f} f1={report['f1']:.3f} "
           f"auc={report['auc']:.3f} precision={report['precision']:.3f} "
           f"recall={report['recall']:.3f} (threshold {model['threshold']:.2f})")
    if tracking_run_id:
        bt.log(f"  logged as run {tracking_run_id} in experiment {experiment}")
    return dict(report, model=task_label, algorithm=model["algorithm"],
                model_path=str(path), threshold=model["threshold"], train_seconds=seconds,
                tracking_run_id=tracking_run_id)

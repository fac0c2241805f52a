"""Baton's experiment tracking and model registry for the example scripts.

The scripts use the Baton Python SDK (see baton_sdk.py for how it is found).

Under `baton up` every task gets MLFLOW_TRACKING_URI, pointing at Baton's MLflow-compatible
tracking server with the task's run in the path: runs and model versions made here are linked
to the pipeline run that made them.
"""

import os
import shutil
import tempfile
from pathlib import Path


from baton_sdk import baton  # noqa: E402

MODEL_NAME = "churn"
EXPERIMENT = "churn_training"


def tracking_available() -> bool:
    """Whether a Baton server is there to track to (not when a script is run by hand)."""
    return bool(os.environ.get("MLFLOW_TRACKING_URI") or os.environ.get("BATON_SERVER"))


def track_candidate(name: str, model: dict, report: dict, source: dict, model_path: Path,
                    experiment: str = EXPERIMENT, baseline=None):
    """Logs one trained candidate as a run: its params, test metrics and model file, and with
    `baseline` = (training rows, their predictions) the drift baseline next to the model file.

    Returns the run id, or None when no tracking server is there.
    """
    if not tracking_available():
        return None
    params = {"algorithm": model.get("algorithm", name), "threshold": round(model.get("threshold", 0.5), 4),
              "features": len(model.get("features", [])), "feature_date": source.get("feature_date", ""),
              "train_rows": model.get("trained_on", {}).get("train_rows", "")}
    for key, value in (model.get("hyperparameters") or {}).items():
        params[f"hp_{key}"] = value
    tags = {"candidate": name, "team": "ml_engineering"}
    with baton.start_run(experiment, run_name=name, tags=tags, params=params) as run:
        run.log_metrics({key: report[key] for key in ("accuracy", "f1", "auc", "precision", "recall", "log_loss")
                         if isinstance(report.get(key), (int, float))})
        # Saved as model/model.json whatever the candidate, so every version has the same layout.
        with tempfile.TemporaryDirectory() as folder:
            staged = Path(folder) / "model.json"
            shutil.copyfile(model_path, staged)
            run.log_artifact(staged, artifact_path="model")
        # Any candidate may be the one registered (runs:/ID/model), and its run is still open
        # here: each gets baseline.json in `model`, so every registered version has one.
        if baseline is not None:
            rows, predictions = baseline
            baton.log_baseline(rows, predictions, run=run, artifact_path="model")
    return run.run_id

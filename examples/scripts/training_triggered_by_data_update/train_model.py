#!/usr/bin/env python3
"""The lecture's train_model() for the event-triggered training flow.

Trains the quickest of model_training_flow's three candidates (logistic
regression, `train_lightgbm.fit`) on get_training_data's split and reports
its held-out metrics as the task output.  The model is saved next to the
data (var/triggered_training/<logical date>/models/) and not registered:
registering and approving stays with model_training_flow.
"""

import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCRIPTS / "common"))
sys.path.insert(0, str(SCRIPTS / "model_training_flow"))
import baton_task as bt  # noqa: E402
import train_lightgbm  # noqa: E402
import training  # noqa: E402


def main():
    bt.begin()
    started = time.time()
    upstream = "get_training_data"
    ds = training.load_dataset(upstream)
    model = train_lightgbm.fit(ds)
    model_dir = Path(bt.require_input(upstream)["dataset_path"]).parent / "models"
    # Its own experiment: these quick event-driven runs are not candidates for the registry.
    training.finish("churn_triggered", model, ds, started, upstream=upstream, model_dir=model_dir,
                    experiment="churn_triggered_training")
    bt.report_pipeline_duration(owner="ml_engineering")


if __name__ == "__main__":
    main()

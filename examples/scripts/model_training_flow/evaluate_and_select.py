#!/usr/bin/env python3
"""Compare the three candidate models and select the best one.

    python3 scripts/model_training_flow/evaluate_and_select.py --metric f1

Reads the trainers' outputs from BATON_INPUTS ({"train_xgboost": {...},
"train_lightgbm": {...}, "train_neural_net": {...}}), each holding test-split
metrics and a model_path, and ranks them by the selection metric (the
pipeline param `selection_metric`).  Ties go to the higher AUC.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402

METRICS = ("accuracy", "f1", "auc", "precision", "recall")


def main():
    bt.begin()
    ap = argparse.ArgumentParser()
    ap.add_argument("--metric", default=bt.param("selection_metric", "f1"))
    metric = ap.parse_args().metric
    if metric not in METRICS:
        bt.fail(f"selection_metric must be one of {', '.join(METRICS)}, not {metric!r}")

    candidates = {task: out for task, out in bt.read_inputs().items()
                  if out and "model_path" in out}
    if not candidates:
        bt.fail("no trained models in BATON_INPUTS")
    board = sorted(candidates.items(),
                   key=lambda kv: (-kv[1][metric], -kv[1].get("auc", 0), kv[0]))

    bt.log(f"{'task':18s} {'model':12s} {'algorithm':25s} accuracy     f1    auc")
    for task, out in board:
        mark = "  <- best" if task == board[0][0] else ""
        bt.log(f"{task:18s} {out['model']:12s} {out['algorithm']:25s} {out['accuracy']:8.3f} "
               f"{out['f1']:6.3f} {out['auc']:6.3f}{mark}")
    best_task, best = board[0]
    bt.log(f"selected {best['model']} by {metric}={best[metric]:.3f}")

    bt.write_output({
        "best_task": best_task,
        "best_model": best["model"],
        "algorithm": best["algorithm"],
        "model_path": best["model_path"],
        "tracking_run_id": best.get("tracking_run_id"),
        "selection_metric": metric,
        "value": best[metric],
        "metrics": {m: best[m] for m in METRICS + ("log_loss",) if m in best},
        "leaderboard": [{"task": t, "model": o["model"], metric: o[metric]} for t, o in board],
    })


if __name__ == "__main__":
    main()

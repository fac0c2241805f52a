#!/usr/bin/env python3
"""Register the selected model in Baton's model registry and approve it for deployment.

This is the hand-off from ML Engineering to MLOps. The best candidate's experiment run (logged
by its trainer, with the model file as its `model` artifact) becomes a new version of the
registered model `churn`; when its selection metric reaches `approval_threshold` the version is
approved: the `champion` alias moves to it, recorded with who (this pipeline) and why. The
deployment pipeline deploys whatever holds `champion`. A version below the bar is registered but
not approved, and the previously approved version stays approved.

    baton models show churn        versions, approvals and the pipeline runs that made them
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import registry  # noqa: E402


def main():
    bt.begin()
    best = bt.require_input("evaluate_and_select")
    threshold = bt.param_float("approval_threshold", 0.6)
    metric, value = best["selection_metric"], float(best["value"])
    run_id = best.get("tracking_run_id")
    if not run_id:
        bt.fail("the selected candidate has no experiment run: the trainers log to Baton's tracking server, "
                "which needs `baton up` (MLFLOW_TRACKING_URI)")
    approved = value >= threshold
    reason = f"{metric}={value:.3f} {'>=' if approved else '<'} approval_threshold {threshold}"
    version = registry.baton.register_model(
        registry.MODEL_NAME, run_id=run_id, artifact_path="model",
        description=f"{best['best_model']} ({best['algorithm']}), selected by {metric}",
        tags={"candidate": best["best_model"], "algorithm": best["algorithm"], metric: f"{value:.4f}"},
        approve=approved, note=reason)
    bt.log(f"registered {registry.MODEL_NAME} v{version['version']} ({best['best_model']}, {metric}={value:.3f}) "
           f"from run {run_id}; files at {version.get('artifact_path', version.get('artifact_uri'))}")
    if approved:
        bt.log(f"approved v{version['version']} for deployment ('champion'): {reason}")
    else:
        bt.log(f"NOT approved: {reason}; the previously approved version (if any) stays approved")

    duration = bt.report_pipeline_duration(owner="ml_engineering")
    bt.write_output({
        "model_name": registry.MODEL_NAME,
        "version": version["version"],
        "model_uri": version["uri"],
        "artifact_uri": version.get("artifact_uri"),
        "approved": approved,
        "selection_metric": metric,
        "value": value,
        "approval_threshold": threshold,
        "tracking_run_id": run_id,
        "pipeline_duration_s": duration,
    })


if __name__ == "__main__":
    main()

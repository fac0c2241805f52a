#!/usr/bin/env python3
"""Register the selected model in the file-based model registry.

This is the hand-off from ML Engineering to MLOps:

    var/registry/churn/
      v1/model.json        the model itself
      v1/metadata.json     metrics, selection, source run, created_at, stage
      v2/...
      approved.json        the version MLOps may deploy (written only when the
                           selection metric reaches `approval_threshold`)

A re-run for the same logical date replaces the version it created before
instead of adding a new one.
"""

import hashlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402


def existing_versions(registry: Path) -> dict:
    """{version number: metadata} of every registered version."""
    out = {}
    for meta in registry.glob("v*/metadata.json"):
        try:
            out[int(meta.parent.name[1:])] = json.loads(meta.read_text())
        except (ValueError, OSError):
            continue
    return out


def main():
    bt.begin()
    best = bt.require_input("evaluate_and_select")
    threshold = bt.param_float("approval_threshold", 0.6)
    metric, value = best["selection_metric"], float(best["value"])
    registry = contracts.registry_dir()
    registry.mkdir(parents=True, exist_ok=True)

    with bt.locked(registry / "registry"):
        versions = existing_versions(registry)
        source = {"pipeline": bt.pipeline_name(), "run_id": bt.run_id(),
                  "logical_date": bt.logical_date(), "task": best["best_task"]}
        same_run = [v for v, m in versions.items()
                    if m.get("source", {}).get("pipeline") == source["pipeline"]
                    and m.get("source", {}).get("logical_date") == source["logical_date"]]
        version = same_run[0] if same_run else max(versions, default=0) + 1
        approved = value >= threshold

        model_bytes = Path(best["model_path"]).read_bytes()
        model = json.loads(model_bytes)
        metadata = {
            "model_name": contracts.MODEL_NAME,
            "version": version,
            "candidate": best["best_model"],
            "algorithm": best["algorithm"],
            "metrics": best["metrics"],
            "selection": {"metric": metric, "value": value, "leaderboard": best["leaderboard"]},
            "approval": {"metric": metric, "threshold": threshold, "passed": approved},
            "stage": "approved" if approved else "registered",
            "trained_on": model.get("trained_on", {}),
            "source": source,
            "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
            "created_at": bt.now_iso(),
        }
        tmp = bt.temp_dir_for(registry / f"v{version}")
        shutil.copyfile(best["model_path"], tmp / "model.json")
        bt.atomic_write_json(tmp / "metadata.json", metadata)
        bt.replace_dir(tmp, registry / f"v{version}")
        bt.log(f"registered {contracts.MODEL_NAME} v{version} ({best['best_model']}, "
               f"{metric}={value:.3f}) at {registry / f'v{version}'}"
               + (" (replacing this logical date's earlier version)" if same_run else ""))

        approval_file = registry / "approved.json"
        if approved:
            bt.atomic_write_json(approval_file, {
                "model_name": contracts.MODEL_NAME,
                "version": version,
                "model_path": f"v{version}/model.json",
                "metadata_path": f"v{version}/metadata.json",
                "model_sha256": metadata["model_sha256"],
                "metrics": metadata["metrics"],
                "approved_at": bt.now_iso(),
                "approved_by": bt.pipeline_name(),
                "reason": f"{metric}={value:.3f} >= approval_threshold {threshold}",
            })
            bt.log(f"approved v{version} for deployment: {metric}={value:.3f} >= {threshold}")
        else:
            bt.log(f"NOT approved: {metric}={value:.3f} < approval_threshold {threshold}; "
                   f"the previously approved version (if any) stays approved")
            if approval_file.exists() and json.loads(approval_file.read_text()).get("version") == version:
                approval_file.unlink()   # this re-run replaced an approved version with a worse one
                bt.log(f"withdrew the approval of v{version}")

    duration = bt.report_pipeline_duration(owner="ml_engineering")
    bt.write_output({
        "model_name": contracts.MODEL_NAME,
        "version": version,
        "registry_path": str(registry / f"v{version}"),
        "approved": approved,
        "stage": metadata["stage"],
        "selection_metric": metric,
        "value": value,
        "approval_threshold": threshold,
        "pipeline_duration_s": duration,
    })


if __name__ == "__main__":
    main()

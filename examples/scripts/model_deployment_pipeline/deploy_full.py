#!/usr/bin/env python3
"""Promote the canary to production (100% of traffic).

    python3 scripts/model_deployment_pipeline/deploy_full.py --version 3 --artifact DIR

Updates var/deployments/churn/state.json and points var/serving/production.json
at the artifact - that pointer is what a model server would load.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deployments  # noqa: E402
import baton_task as bt  # noqa: E402


def main():
    bt.begin()
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", type=lambda v: int(float(v)), required=True)  # "3" or "3.0"
    ap.add_argument("--artifact", required=True)
    args = ap.parse_args()
    artifact = Path(args.artifact)
    manifest = json.loads((artifact / "manifest.json").read_text())
    if manifest["model_version"] != args.version:
        bt.fail(f"artifact {artifact.name} holds v{manifest['model_version']}, not v{args.version}")
    verdict = bt.require_input("validate_metrics")

    with deployments.state() as st:
        previous = st["production"]
        canary = st["canary"] or {}
        st["production"] = {"version": args.version, "artifact_dir": str(artifact),
                            "image": manifest["image"], "content_hash": manifest["content_hash"],
                            "traffic_percent": 100, "deployed_at": bt.now_iso(),
                            "run_id": bt.run_id(), "canary_metrics": canary.get("metrics"),
                            "reason": verdict["reason"]}
        st["canary"] = None
        deployments.record(st, "deploy_full", version=args.version,
                           previous_version=previous["version"] if previous else None)
        production = st["production"]
    bt.atomic_write_json(bt.var_dir() / "serving" / "production.json", production)

    bt.log(f"churn v{args.version} is now in production at 100% "
           f"(was: {'v%d' % previous['version'] if previous else 'nothing'}); image {manifest['image']}")
    duration = bt.report_pipeline_duration(owner="mlops")
    bt.write_output({"deployed_version": args.version, "artifact_dir": str(artifact),
                     "previous_version": previous["version"] if previous else None,
                     "pipeline_duration_s": duration})


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Send the tested model version a canary share of the live traffic.

    python3 scripts/model_deployment_pipeline/deploy_canary.py --percent 10

Starts a canary of models:/churn/N (the version this run tested) on the deployment `churn`
(pipelines/deployments.yaml) through Baton's deployments API, and returns once its replicas are
healthy and take `--percent` % of /serve/churn/predict; stable serves the rest. Baton analyses
the canary from then on and rolls it back by itself if it is worse than stable.

The first deployment has nothing to compare with: Baton makes it stable directly. A version
that already is stable is not deployed again. A canary of another version left over by an
earlier, interrupted run is rolled back first (only one canary at a time).
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402
from baton_sdk import baton  # noqa: E402


def version_of(part):
    return str(part["version"]) if part and part.get("version") is not None else None


def main():
    bt.begin()
    ap = argparse.ArgumentParser()
    ap.add_argument("--percent", type=float, default=float(bt.param("canary_percent", 10)))
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for healthy replicas")
    args = ap.parse_args()
    if not 0 < args.percent <= 50:
        bt.fail(f"canary_percent must be in (0, 50], got {args.percent:g}")
    tested = bt.require_input("run_integration_tests")   # only tested artifacts go out
    version = str(json.loads((Path(tested["artifact_dir"]) / "manifest.json").read_text())["model_version"])
    model = f"models:/{contracts.MODEL_NAME}/{version}"
    deployment = contracts.DEPLOYMENT

    try:
        status = baton.deployment_status(deployment)
    except baton.DeploymentNotFound as error:
        bt.fail(f"{error.message}; it is declared in pipelines/deployments.yaml")
    stable, canary = version_of(status.get("stable")), version_of(status.get("canary"))
    if canary and canary != version:
        bt.log(f"rolling back the leftover canary v{canary} first")
        baton.rollback(deployment, reason=f"superseded by a canary of v{version} (run {bt.run_id()})")
        canary = None
    if stable == version and canary is None:
        bt.log(f"{deployment}: v{version} already is the stable version; nothing to deploy")
        bt.write_output({"deployment": deployment, "version": version, "mode": "already_stable",
                         "stable_version": stable, "traffic_percent": 0, "rolled_back": False})
        return

    try:
        if canary == version:
            # An earlier run of this version was interrupted after starting it: watch that one.
            bt.log(f"{deployment}: v{version} already runs as the canary; monitoring it")
        else:
            baton.deploy_canary(deployment, model=model, traffic_percent=args.percent, timeout=args.timeout)
        status = baton.deployment_status(deployment)
    except baton.CanaryRolledBack as error:
        # Not a task failure: validate_metrics sees it and the rollback branch runs.
        bt.log(f"the canary was rolled back while starting: {error.message}")
        bt.write_output({"deployment": deployment, "version": version, "mode": "canary", "stable_version": stable,
                         "traffic_percent": args.percent, "rolled_back": True, "reason": error.message})
        return
    except baton.DeploymentError as error:
        bt.fail(str(error))
    first = stable is None
    traffic = status.get("traffic") or {}
    replicas = (status.get("stable") if first else status.get("canary")) or {}
    bt.log(f"{deployment}: " + (f"first deployment, v{version} is stable and takes all traffic" if first else
           f"canary v{version} takes {traffic.get('canary_percent', args.percent)}% of the traffic, "
           f"stable v{stable} the rest")
           + f" ({len(replicas.get('replicas') or [])} replica(s) healthy)")
    bt.write_output({"deployment": deployment, "version": version, "mode": "first" if first else "canary",
                     "stable_version": version if first else stable, "traffic_percent": 100 if first else args.percent,
                     "rolled_back": False})


if __name__ == "__main__":
    main()

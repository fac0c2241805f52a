#!/usr/bin/env python3
"""Promote the canary: it becomes the stable version and takes all of the traffic.

    python3 scripts/model_deployment_pipeline/deploy_full.py --version 3

Runs when validate_metrics passed. Calls baton.deploy_full("churn") with validate_metrics'
reason (kept in the deployment's audit trail: `baton deploy history churn`); the old stable
version's replicas drain and stop. After a first deployment the version already is stable and
there is nothing to promote.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402
from baton_sdk import baton  # noqa: E402


def main():
    bt.begin()
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", type=lambda v: str(int(float(v))), required=True)  # "3" or "3.0"
    version = ap.parse_args().version
    verdict = bt.require_input("validate_metrics")
    deployment = contracts.DEPLOYMENT
    status = baton.deployment_status(deployment)
    current_canary = (status.get("canary") or {}).get("version")
    previous = (status.get("stable") or {}).get("version")
    if current_canary is not None and str(current_canary) == version:
        baton.deploy_full(deployment, reason=f"validate_metrics passed: {verdict['reason']}")
        status = baton.deployment_status(deployment)
    stable = (status.get("stable") or {}).get("version")
    if str(stable) != version:
        bt.fail(f"{deployment}: v{version} is not stable after promotion (stable is v{stable}, canary "
                f"v{(status.get('canary') or {}).get('version')})")
    bt.log(f"{deployment}: v{version} serves 100% of the traffic"
           + (f" (was v{previous})" if previous is not None and str(previous) != version else " (already stable)"))
    duration = bt.report_pipeline_duration(owner="mlops")
    bt.write_output({"deployment": deployment, "deployed_version": version,
                     "previous_version": str(previous) if previous is not None else None,
                     "pipeline_duration_s": duration})


if __name__ == "__main__":
    main()

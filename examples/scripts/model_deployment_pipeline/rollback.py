#!/usr/bin/env python3
"""Roll the canary back: all traffic returns to the stable version.

Runs instead of deploy_full when validate_metrics reports passed == false. Calls
baton.rollback("churn") with validate_metrics' reason (kept in the deployment's audit trail:
`baton deploy history churn`): the canary gets 0 % of the traffic and its replicas drain and
stop; stable keeps serving. When Baton already rolled the canary back by itself, or there was
no canary (a first deployment or an unchanged version), there is nothing left to do and the
task says so.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402
from baton_sdk import baton  # noqa: E402


def main():
    bt.begin()
    verdict = bt.require_input("validate_metrics")
    deployment = contracts.DEPLOYMENT
    version = str(verdict.get("version"))
    status = baton.deployment_status(deployment)
    canary = (status.get("canary") or {}).get("version")
    if canary is not None and str(canary) == version:
        baton.rollback(deployment, reason=f"validate_metrics failed: {verdict['reason']}")
        status = baton.deployment_status(deployment)
        bt.log(f"rolled back canary v{version}: {verdict['reason']}")
        rolled_back = version
    elif (status.get("rollout") or {}).get("state") in ("rolled_back", "aborted") and canary is None:
        bt.log(f"canary v{version} was already {status['rollout']['state'].replace('_', ' ')} by Baton: {verdict['reason']}")
        rolled_back = version
    else:
        bt.log(f"no canary of v{version} to roll back (validation: {verdict['reason']})")
        rolled_back = None
    stable = (status.get("stable") or {}).get("version")
    bt.log(f"traffic: 100% on stable v{stable}" if stable is not None else "traffic: no stable version yet")
    duration = bt.report_pipeline_duration(owner="mlops")
    bt.write_output({"deployment": deployment, "rolled_back_version": rolled_back,
                     "stable_version": str(stable) if stable is not None else None,
                     "reason": verdict["reason"], "pipeline_duration_s": duration})


if __name__ == "__main__":
    main()

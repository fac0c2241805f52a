#!/usr/bin/env python3
"""Roll the canary back: all traffic returns to the current production model.

Runs instead of deploy_full when validate_metrics reports passed == false.
Production is left untouched; the canary is removed and the rollback, with
validate_metrics' reason, is recorded in var/deployments/churn/state.json.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deployments  # noqa: E402
import baton_task as bt  # noqa: E402


def main():
    bt.begin()
    verdict = bt.require_input("validate_metrics")
    with deployments.state() as st:
        canary, production = st["canary"], st["production"]
        st["canary"] = None
        deployments.record(st, "rollback",
                           version=canary["version"] if canary else verdict.get("version"),
                           reason=verdict["reason"],
                           production_version=production["version"] if production else None)

    rolled_back = canary["version"] if canary else verdict.get("version")
    bt.log(f"rolled back canary v{rolled_back}: {verdict['reason']}")
    bt.log(f"traffic: 100% on production v{production['version']}" if production else
           "traffic: no production model yet - the churn model stays undeployed")
    duration = bt.report_pipeline_duration(owner="mlops")
    bt.write_output({"rolled_back_version": rolled_back,
                     "production_version": production["version"] if production else None,
                     "reason": verdict["reason"], "pipeline_duration_s": duration})


if __name__ == "__main__":
    main()

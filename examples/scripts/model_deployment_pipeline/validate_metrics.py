#!/usr/bin/env python3
"""Decide whether the canary is good enough for full deployment.

Compares monitor_canary's figures of the canary (as Baton's gateway counted them, plus the
accuracy on labelled customers) with the thresholds in the params, with baton.validate_metrics,
and writes {"passed": true|false, "reason": "...", "checks": [...]}. It always exits 0: a bad
canary is a normal outcome, not a task failure. Downstream, deploy_full runs
`when: tasks.validate_metrics.output.passed == true` and rollback runs when it is false.

A canary Baton already rolled back during the watch fails here with Baton's reason.
Set the param force_rollback=true to fail the check on purpose:
    baton trigger model_deployment_pipeline --param force_rollback=true
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import baton_task as bt  # noqa: E402
from baton_sdk import baton  # noqa: E402
from traffic import MIN_LABELLED  # noqa: E402


def main():
    bt.begin()
    m = bt.require_input("monitor_canary")
    limits = {
        "max_error_rate": bt.param_float("max_error_rate", 0.01),
        "max_p99_latency_ms": bt.param_float("max_latency_ms_p99", 100),
        "min_requests": bt.param_float("min_requests", 20),
        "min_accuracy": bt.param_float("min_accuracy", 0.6),
    }
    if m.get("rolled_back"):
        passed, reason, checks = False, f"rolled back by Baton during monitoring: {m.get('reason')}", []
    else:
        canary = m.get("canary") or {}
        thresholds = dict(limits)
        if canary.get("accuracy") is None:
            # Too few labelled answers from the canary in this watch to judge its accuracy.
            bt.log(f"  [SKIP] accuracy: fewer than {MIN_LABELLED} labelled answers from the canary")
            thresholds.pop("min_accuracy")
        result = baton.validate_metrics(m, **thresholds)
        checks = result.to_dict()["checks"]
        for check in result.checks:
            bt.log(f"  [{'PASS' if check.passed else 'FAIL'}] {check.detail}")
        if bt.param_bool("force_rollback", False):
            passed, reason = False, "forced by param force_rollback=true"
        elif not result:
            passed, reason = False, "canary failed: " + result.reason
        else:
            passed, reason = True, "canary healthy: " + "; ".join(check.detail for check in result.checks)
    bt.log(f"{'PASSED' if passed else 'FAILED'}: {reason} -> {'deploy_full' if passed else 'rollback'} runs next")
    canary = m.get("canary") or {}
    bt.write_output({
        "passed": passed,
        "reason": reason,
        "version": m.get("version"),
        "checks": checks,
        "thresholds": limits,
        "metrics": {key: canary.get(key) for key in ("requests", "error_rate", "p50_ms", "p99_ms", "accuracy")},
    })


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Decide whether the canary is good enough for full deployment.

Compares monitor_canary's metrics with the thresholds in the params and
writes {"passed": true|false, "reason": "..."}.  It always exits 0: a bad
canary is a normal outcome, not a task failure.  Downstream, deploy_full runs
`when: tasks.validate_metrics.output.passed == true` and rollback runs when
it is false.

Set the param force_rollback=true to fail the check on purpose:
    baton trigger model_deployment_pipeline --param force_rollback=true
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402


def main():
    bt.begin()
    m = bt.require_input("monitor_canary")
    limits = {
        "max_error_rate": bt.param_float("max_error_rate", 0.01),
        "max_latency_ms_p99": bt.param_float("max_latency_ms_p99", 50),
        "min_accuracy": bt.param_float("min_accuracy", 0.6),
    }
    checks = [
        ("error_rate", m["error_rate"] <= limits["max_error_rate"],
         f"error_rate {m['error_rate']:.2%} (max {limits['max_error_rate']:.2%})"),
        ("latency_ms_p99", m["latency_ms_p99"] <= limits["max_latency_ms_p99"],
         f"p99 latency {m['latency_ms_p99']:.3f}ms (max {limits['max_latency_ms_p99']:g}ms)"),
        ("accuracy", m["accuracy"] >= limits["min_accuracy"],
         f"accuracy {m['accuracy']:.3f} (min {limits['min_accuracy']:g})"),
    ]
    for name, ok, text in checks:
        bt.log(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    failed = [text for _, ok, text in checks if not ok]

    if bt.param_bool("force_rollback", False):
        passed, reason = False, "forced by param force_rollback=true"
    elif failed:
        passed, reason = False, "canary failed: " + "; ".join(failed)
    else:
        passed, reason = True, "canary healthy: " + "; ".join(text for _, _, text in checks)
    bt.log(f"{'PASSED' if passed else 'FAILED'}: {reason} -> "
           f"{'deploy_full' if passed else 'rollback'} runs next")
    bt.write_output({
        "passed": passed,
        "reason": reason,
        "version": m["version"],
        "checks": {name: ok for name, ok, _ in checks},
        "thresholds": limits,
        "metrics": {k: m[k] for k in ("error_rate", "latency_ms_p99", "accuracy")},
    })


if __name__ == "__main__":
    main()

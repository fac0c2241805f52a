#!/usr/bin/env python3
"""Watch the canary on live traffic, as Baton's gateway measures it.

    python3 scripts/model_deployment_pipeline/monitor_canary.py --seconds 20 --rate 20

For `--seconds` (param monitor_seconds, default 20; the lecture's two hours, shortened) it sends
prediction traffic through $BATON_SERVER/serve/churn/predict (traffic.py: labelled holdout
customers with their features, and CRM customer ids scored from the online feature store) and
reads the deployment's status with baton.monitor_canary. Output: the canary's and stable's
figures as the gateway counted them (requests, errors, error_rate, p50_ms, p99_ms), the rollout
state, and per version the accuracy on the labelled customers, which is also emitted as the
metric churn.accuracy (tags deployment, version) for Baton's own analysis.

If Baton rolls the canary back meanwhile (its analysis found it worse than stable), the watch
ends at once and the output says so (rolled_back, reason): validate_metrics fails it and the
rollback branch runs. On a first deployment (no canary) the new stable version is watched.
"""

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
sys.path.insert(0, str(HERE))
import baton_task as bt  # noqa: E402
import traffic  # noqa: E402
from baton_sdk import baton  # noqa: E402


def emit_accuracy(deployment, summary, emitted):
    """churn.accuracy per version, once per version and sample with enough labelled answers."""
    for version, figures in summary["versions"].items():
        if figures["accuracy"] is None or figures["labelled"] < 10 or emitted.get(version) == figures["labelled"]:
            continue
        emitted[version] = figures["labelled"]
        try:
            baton.emit_metric("churn.accuracy", figures["accuracy"], tags={"deployment": deployment, "version": version})
        except baton.BatonError as error:
            bt.log(f"  (could not emit churn.accuracy: {error.message})")


def main():
    bt.begin()
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=bt.param_float("monitor_seconds", 20))
    ap.add_argument("--rate", type=float, default=bt.param_float("traffic_rps", 20), help="requests per second")
    args = ap.parse_args()
    deployed = bt.require_input("deploy_canary")
    deployment, version = deployed["deployment"], deployed["version"]
    out = {"deployment": deployment, "version": version, "mode": deployed["mode"], "rolled_back": False}
    if deployed.get("rolled_back"):
        bt.log(f"nothing to watch: the canary v{version} was already rolled back ({deployed.get('reason')})")
        bt.write_output(dict(out, rolled_back=True, reason=deployed.get("reason"), canary=None, stable=None))
        return

    emitted = {}
    last_log = [0.0]
    load = traffic.Traffic(deployment, rate_per_second=args.rate)

    def progress(status):
        summary = load.summary()
        emit_accuracy(deployment, summary, emitted)
        if time.monotonic() - last_log[0] >= 5:
            last_log[0] = time.monotonic()
            stats = status.get("stats") or {}
            bt.log("  " + ", ".join(f"v{v}: {s.get('requests', 0)} req, {s.get('error_rate', 0) or 0:.1%} errors, "
                                    f"p99 {s.get('p99_ms')}ms" for v, s in sorted(stats.items()))
                   + f" | sent {summary['sent']}")

    bt.log(f"watching {deployment} for {args.seconds:g}s with {args.rate:g} requests/s through the gateway")
    with load:
        try:
            metrics = baton.monitor_canary(deployment, duration_seconds=args.seconds,
                                           interval_seconds=min(2.0, max(0.5, args.seconds / 10)), on_sample=progress)
        except baton.CanaryRolledBack as error:
            bt.log(f"Baton rolled the canary back during the watch: {error.message}")
            metrics = dict(out, rolled_back=True, reason=error.message, canary=None, stable=None)
    summary = load.summary()
    emit_accuracy(deployment, summary, emitted)

    for figures in (metrics.get("canary"), metrics.get("stable")):
        if figures:
            client = summary["versions"].get(figures["version"]) or {}
            figures["accuracy"] = client.get("accuracy")
    if metrics.get("canary") is None and not metrics.get("rolled_back") and metrics.get("stable"):
        # A first deployment (or an unchanged version): the version under test is stable.
        metrics["canary"] = dict(metrics["stable"])
        metrics["candidate_is_stable"] = True
    metrics.update({"deployment": deployment, "version": version, "mode": deployed["mode"],
                    "rolled_back": metrics.get("rolled_back", False), "traffic": summary})
    for role in ("canary", "stable"):
        figures = metrics.get(role)
        if figures:
            bt.log(f"{role} v{figures['version']}: {figures['requests']} requests, error_rate={figures['error_rate']:.2%}, "
                   f"p50={figures['p50_ms']}ms p99={figures['p99_ms']}ms, accuracy={figures.get('accuracy')}")
    bt.log(f"traffic: {summary['sent']} sent, {summary['failures']} without an answer, "
           f"{summary['client_errors']} client errors")
    bt.write_output(metrics)


if __name__ == "__main__":
    main()

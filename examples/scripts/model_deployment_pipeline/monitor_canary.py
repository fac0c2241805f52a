#!/usr/bin/env python3
"""Monitor the canary: replay a labelled holdout sample through it.

The lecture watches the canary for two hours of real traffic.  Here the
"traffic" is data/holdout.csv - customers the model has never seen, with
their true churn labels - scored by the canary artifact's own code, loaded
from the artifact directory.  Measured per request:

    error_rate       share of requests that raised or returned a non-probability
    latency_ms_p99   99th percentile scoring latency
    accuracy         share of correct churn predictions (at the model's threshold)
"""

import csv
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deployments  # noqa: E402
import baton_task as bt  # noqa: E402

HOLDOUT = bt.DATA_DIR / "holdout.csv"


def load_artifact(artifact: Path):
    """Import the artifact's churn_model.py (not ours) and its model.json."""
    spec = importlib.util.spec_from_file_location("canary_churn_model", artifact / "churn_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.load_model(artifact / "model.json")


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


def main():
    bt.begin()
    canary = bt.require_input("deploy_canary")
    artifact = Path(canary["artifact_dir"])
    module, model = load_artifact(artifact)

    with open(HOLDOUT, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    latencies, errors, correct, scored = [], 0, 0, 0
    for row in rows:
        started = time.perf_counter()
        try:
            result = module.predict(model, row)
            p = result["churn_probability"]
            if not (0.0 <= p <= 1.0):
                raise ValueError(f"probability {p} out of range")
        except Exception as e:   # a failing request, not a failing task
            errors += 1
            bt.log(f"  request for {row.get('customer_id')} failed: {e}")
            continue
        finally:
            latencies.append((time.perf_counter() - started) * 1000)
        scored += 1
        correct += int(result["churn"] == (row["churned"] == "1"))

    out = {
        "requests": len(rows),
        "error_rate": round(errors / len(rows), 4),
        "latency_ms_p50": round(percentile(latencies, 50), 4),
        "latency_ms_p99": round(percentile(latencies, 99), 4),
        "accuracy": round(correct / scored, 4) if scored else 0.0,
        "version": canary["version"],
        "traffic_percent": canary["traffic_percent"],
    }
    with deployments.state() as st:
        if st["canary"] and st["canary"]["version"] == canary["version"]:
            st["canary"]["metrics"] = out
    bt.log(f"canary v{canary['version']} over {len(rows)} holdout requests: "
           f"error_rate={out['error_rate']:.2%} p99={out['latency_ms_p99']:.3f}ms "
           f"accuracy={out['accuracy']:.3f}")
    bt.write_output(out)


if __name__ == "__main__":
    main()

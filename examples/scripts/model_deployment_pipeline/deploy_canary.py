#!/usr/bin/env python3
"""Deploy the artifact as a canary taking a small share of the traffic.

    python3 scripts/model_deployment_pipeline/deploy_canary.py --percent 10

Records the canary in var/deployments/churn/state.json; production keeps
serving the remaining traffic.
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
    ap.add_argument("--percent", type=float, default=float(bt.param("canary_percent", 10)))
    percent = ap.parse_args().percent
    if not 0 < percent <= 50:
        bt.fail(f"canary_percent must be in (0, 50], got {percent:g}")
    build = bt.require_input("run_integration_tests")   # only tested artifacts go out
    artifact = build["artifact_dir"]
    version = json.loads((Path(artifact) / "manifest.json").read_text())["model_version"]

    with deployments.state() as st:
        prod = st["production"]
        st["canary"] = {"version": version, "artifact_dir": artifact,
                        "traffic_percent": percent, "started_at": bt.now_iso(),
                        "run_id": bt.run_id()}
        deployments.record(st, "deploy_canary", version=version, traffic_percent=percent)

    if prod and prod["version"] == version:
        bt.log(f"v{version} is already in production; re-validating it as a canary")
    bt.log(f"canary: churn v{version} now takes {percent:g}% of traffic; "
           + (f"production v{prod['version']} takes the rest" if prod else
              "no production model yet (first deployment)"))
    bt.write_output({"version": version, "artifact_dir": artifact, "traffic_percent": percent,
                     "production_version": prod["version"] if prod else None})


if __name__ == "__main__":
    main()

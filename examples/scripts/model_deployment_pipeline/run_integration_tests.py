#!/usr/bin/env python3
"""Integration-test the serving artifact as a black box, the way a deployment runs it.

Starts the artifact's serve.py in a fresh process on a free loopback port, with the environment
Baton gives a deployment's replica (BATON_PORT, BATON_MODEL_DIR = the artifact folder,
BATON_MODEL_VERSION, BATON_SERVER), waits for GET /health, and checks over HTTP that:

  1. /health answers 200 with the built model version,
  2. POST /predict with {"rows": [...]} of data/integration_test_rows.jsonl answers one
     prediction per row, each a probability in [0, 1] (also as `prediction`, which the
     gateway records),
  3. scoring is deterministic (the same request gives the same answer),
  4. a clearly disengaged customer scores higher than a clearly active one,
  5. one row's features as the body answer that row, and a body that is not JSON is a 400,
  6. under `baton up`: a customer named by id alone is scored with its features from the
     online feature store (feature service churn_model).

Any failed check fails the task, which stops the deployment before any traffic reaches it.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
sys.path.insert(0, str(HERE))
import baton_task as bt  # noqa: E402
import serving_checks  # noqa: E402


def main():
    bt.begin()
    build = bt.require_input("build_serving_container")
    artifact = Path(build["artifact_dir"])
    online = serving_checks.online_customer() if os.environ.get("BATON_SERVER") else None
    try:
        with serving_checks.running_server(artifact, build["model_version"]) as url:
            bt.log(f"serve.py of {artifact.name} is healthy at {url}")
            results = serving_checks.run_checks(url, build["model_version"], online=online, log=bt.log)
    except RuntimeError as error:
        bt.fail(str(error))
    failed = [r["check"] for r in results if not r["passed"]]
    bt.write_output({"passed": not failed, "checks": len(results), "failed": failed,
                     "artifact_dir": str(artifact), "model_version": build["model_version"]})
    if failed:
        bt.fail(f"{len(failed)} integration test(s) failed: {'; '.join(failed)}")
    bt.log(f"all {len(results)} integration tests passed for {artifact.name}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Integration-test the serving artifact as a black box.

Runs the artifact's predict.py in a fresh process (like starting the
container) on data/integration_test_rows.jsonl and checks:

  1. the health check answers with the expected model version,
  2. every row gets exactly one prediction, with no errors,
  3. every churn_probability is a number in [0, 1],
  4. scoring is deterministic (a second run gives identical output),
  5. a clearly disengaged customer scores higher than a clearly active one,
  6. under `baton up`: a customer named by id alone is scored with its features
     from the online feature store (feature service churn_model).

Any failed check fails the task, which stops the deployment.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402

CASES = bt.DATA_DIR / "integration_test_rows.jsonl"


def run_predict(artifact: Path, stdin: str, *args) -> str:
    proc = subprocess.run([sys.executable, str(artifact / "predict.py"), *args],
                          input=stdin, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        bt.fail(f"predict.py exited with {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def online_customer():
    """A customer of the bundled CRM data, whose features the feature pipeline writes."""
    records = json.loads((bt.DATA_DIR / "crm.json").read_text()).get("records", [])
    ids = sorted(str(record["Customer_Id__c"]) for record in records if record.get("Customer_Id__c"))
    return ids[0] if ids else None


def main():
    bt.begin()
    build = bt.require_input("build_serving_container")
    artifact = Path(build["artifact_dir"])
    rows_text = CASES.read_text()
    rows = [json.loads(line) for line in rows_text.splitlines() if line.strip()]
    results = []

    def check(name, ok, detail=""):
        results.append({"check": name, "passed": bool(ok), "detail": detail})
        bt.log(f"  [{'PASS' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""))

    health = json.loads(run_predict(artifact, "", "--health"))
    check("health check reports the built model version",
          health.get("status") == "ok" and health.get("model_version") == build["model_version"],
          f"v{health.get('model_version')}")

    out1 = run_predict(artifact, rows_text)
    preds = [json.loads(line) for line in out1.splitlines() if line.strip()]
    check("one prediction per input row", len(preds) == len(rows), f"{len(preds)}/{len(rows)}")
    errors = [p for p in preds if "error" in p]
    check("no scoring errors", not errors, "; ".join(f"{p['customer_id']}: {p['error']}" for p in errors))
    probs = [p.get("churn_probability") for p in preds]
    in_range = all(isinstance(p, (int, float)) and not math.isnan(p) and 0.0 <= p <= 1.0 for p in probs)
    check("probabilities are numbers in [0, 1]", in_range and bool(probs),
          ", ".join(f"{p['customer_id']}={p.get('churn_probability')}" for p in preds))

    check("deterministic output", run_predict(artifact, rows_text) == out1)

    by_id = {p["customer_id"]: p.get("churn_probability", -1) for p in preds}
    churner, active = by_id.get("IT-typical-churner", -1), by_id.get("IT-typical-active", -1)
    check("disengaged customer scores higher than an active one", churner > active,
          f"{churner} vs {active}")

    # Serving as it runs for real: a request names the customer, the features come from the
    # online feature store (the same definitions training used). Needs the server (baton up).
    if os.environ.get("BATON_SERVER"):
        customer = online_customer()
        if customer:
            online = [json.loads(line) for line in
                      run_predict(artifact, json.dumps({"customer_id": customer}) + "\n").splitlines() if line.strip()]
            probability = online[0].get("churn_probability") if online else None
            check("a customer scored by id alone, with features from the online store",
                  isinstance(probability, (int, float)) and 0.0 <= probability <= 1.0,
                  f"{customer}={probability}" if probability is not None else (online[0] if online else "no answer"))

    failed = [r["check"] for r in results if not r["passed"]]
    bt.write_output({"passed": not failed, "checks": len(results), "failed": failed,
                     "rows_scored": len(preds), "artifact_dir": str(artifact)})
    if failed:
        bt.fail(f"{len(failed)} integration test(s) failed: {'; '.join(failed)}")
    bt.log(f"all {len(results)} integration tests passed for {artifact.name}")


if __name__ == "__main__":
    main()

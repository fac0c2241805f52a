"""Integration tests of a serving artifact, shared by run_integration_tests.py and the _py pipeline.

The artifact's serve.py is started the way Baton starts a deployment's replica (a fresh
process, BATON_PORT, BATON_MODEL_DIR, BATON_MODEL_VERSION, BATON_SERVER) on a free loopback
port, and is then tested over HTTP as a black box.
"""

import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
CASES = DATA_DIR / "integration_test_rows.jsonl"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(method, url, body=None, timeout=10):
    """(status, decoded JSON or text); error answers are returned, not raised."""
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


@contextlib.contextmanager
def running_server(artifact, version, startup_timeout=20):
    """serve.py of `artifact` on a free port, healthy; yields its base URL and stops it after."""
    port = free_port()
    env = dict(os.environ, BATON_PORT=str(port), BATON_MODEL_DIR=str(artifact), BATON_MODEL_VERSION=str(version),
               LOG_LEVEL="warning")
    for knob in ("BATON_SERVE_FAIL_RATE", "BATON_SERVE_DELAY_MS", "BATON_SERVE_STARTUP_MS"):
        env.pop(knob, None)
    process = subprocess.Popen([sys.executable, str(Path(artifact) / "serve.py")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve.py exited with {process.returncode} before it was healthy: "
                                   f"{process.stdout.read().strip()[-2000:]}")
            try:
                if http("GET", url + "/health", timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve.py did not answer /health within {startup_timeout}s")
            time.sleep(0.1)
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def online_customer():
    """A customer of the bundled CRM data, whose features the feature pipeline writes."""
    records = json.loads((DATA_DIR / "crm.json").read_text()).get("records", [])
    ids = sorted(str(record["Customer_Id__c"]) for record in records if record.get("Customer_Id__c"))
    return ids[0] if ids else None


def run_checks(url, version, online=None, log=print):
    """The checks, as [{"check", "passed", "detail"}]; `online` also scores a customer by id
    alone, with its features from the online store (needs BATON_SERVER)."""
    results = []

    def check(name, ok, detail=""):
        results.append({"check": name, "passed": bool(ok), "detail": str(detail)})
        log(f"  [{'PASS' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""))

    status, health = http("GET", url + "/health")
    check("GET /health answers 200 with the built model version",
          status == 200 and isinstance(health, dict) and str(health.get("model_version")) == str(version),
          f"HTTP {status}, v{health.get('model_version') if isinstance(health, dict) else health}")

    rows = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    status, answer = http("POST", url + "/predict", {"rows": rows})
    predictions = answer.get("predictions", []) if isinstance(answer, dict) else []
    check("POST /predict with rows answers one prediction per row", status == 200 and len(predictions) == len(rows),
          f"HTTP {status}, {len(predictions)}/{len(rows)}")
    probabilities = [p.get("churn_probability") for p in predictions]
    in_range = all(isinstance(p, (int, float)) and not math.isnan(p) and 0.0 <= p <= 1.0 for p in probabilities)
    check("probabilities are numbers in [0, 1], also as `prediction`",
          in_range and bool(probabilities) and all(p.get("prediction") == p.get("churn_probability") for p in predictions),
          ", ".join(f"{p.get('customer_id')}={p.get('churn_probability')}" for p in predictions))
    check("deterministic output", http("POST", url + "/predict", {"rows": rows}) == (status, answer))

    by_id = {p.get("customer_id"): p.get("churn_probability", -1) for p in predictions}
    churner, active = by_id.get("IT-typical-churner", -1), by_id.get("IT-typical-active", -1)
    check("disengaged customer scores higher than an active one", churner > active, f"{churner} vs {active}")

    status, single = http("POST", url + "/predict", rows[0])
    check("POST /predict with one row's features answers that row",
          status == 200 and isinstance(single, dict) and single.get("churn_probability") == predictions[0].get("churn_probability")
          if predictions else False, f"HTTP {status}")
    status, _ = http("POST", url + "/predict", b"not json")
    check("a body that is not JSON is a client error (400), not a server error", status == 400, f"HTTP {status}")

    if online:
        status, scored = http("POST", url + "/predict", {"customer_id": online})
        probability = scored.get("churn_probability") if isinstance(scored, dict) else None
        check("a customer scored by id alone, with features from the online store",
              status == 200 and isinstance(probability, (int, float)) and 0.0 <= probability <= 1.0,
              f"{online}={probability}" if probability is not None else f"HTTP {status} {scored}")
    return results

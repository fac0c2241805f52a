"""Model deployments end to end: real replica processes on loopback behind the real `baton up`.

A deployment's replicas here run a tiny HTTP server (REPLICA below) whose behaviour comes from
the model version it serves: its model.json says how often to fail and how slow to be, so one
deployment can have a healthy stable version, a canary that returns errors, a slow canary and a
healthy canary. The test drives it the way a pipeline does, through the Python SDK
(deploy_canary, monitor_canary, validate_metrics, deploy_full, deployment_status), while a
client sends prediction traffic through the gateway (`POST /serve/NAME/predict`) the whole time:

- v1 is the first deployment and becomes stable;
- a canary v2 that answers 500 is rolled back by Baton's analysis within its window; every
  request stable answered succeeded, every request got an answer, and afterwards stable
  answers everything;
- a canary v3 that is slow is rolled back the same way;
- a healthy canary v4 is watched, validated and promoted; v4 then answers everything;
- a replica killed by its pid is restarted by the supervisor.

Design: docs/model-deployments.md.
"""

import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SDK = REPO / "sdk" / "python"
if str(SDK) not in sys.path:
    sys.path.insert(0, str(SDK))

import baton  # noqa: E402
from conftest import BINARY  # noqa: E402

REPLICA = textwrap.dedent('''
    """A deployment replica for the tests: behaves as its model.json says."""
    import http.server, json, os, random, time

    model = json.load(open(os.path.join(os.environ["BATON_MODEL_DIR"], "model.json")))
    version = os.environ.get("BATON_MODEL_VERSION")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, status, document):
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/health":
                self.send(200, {"status": "ok", "model_version": version, "pid": os.getpid()})
            else:
                self.send(404, {"error": "no route"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            time.sleep(model.get("delay_ms", 0) / 1000)
            if random.random() < model.get("fail_rate", 0):
                self.send(500, {"error": "this version is broken on purpose"})
            else:
                self.send(200, {"prediction": model.get("score", 0.5) + 0.001 * float(body.get("x", 0)),
                                "model_version": version})

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

    Server(("127.0.0.1", int(os.environ["BATON_PORT"])), Handler).serve_forever()
''')

# Baton's analysis compares every ANALYSIS_SECONDS; a bad canary must be gone well within this.
ANALYSIS_SECONDS = 2
ROLLBACK_WITHIN = 30


def spec(folder, replicas=2, max_p99_latency_ms=250):
    """The deployment `scorer` as `PUT /api/v1/deployments/scorer` takes it."""
    return {
        "owner": "mlops",
        "description": "the test's scorer",
        "model": "models:/scorer@champion",
        "command": f"{shlex.quote(sys.executable)} replica.py",
        "workdir": str(folder),
        "health": "/health",
        "replicas": replicas,
        "env": {"PYTHONUNBUFFERED": "1"},
        "rollout": {
            "analysis": {
                "interval": f"{ANALYSIS_SECONDS}s",
                "min_requests": 10,
                "max_error_rate": 0.05,
                "max_error_rate_increase": 0.05,
                "max_p99_latency_ms": max_p99_latency_ms,
            },
        },
    }


def register(tmp_path, version_model, baseline=False, approve=False):
    """Registers a model version whose model.json is `version_model` (approved as `champion` if
    `approve`); returns its number."""
    with baton.start_run("scorer_training") as run:
        folder = tmp_path / f"model-{run.run_id}"
        folder.mkdir(parents=True)
        (folder / "model.json").write_text(json.dumps(version_model))
        run.log_artifact(str(folder / "model.json"), artifact_path="model")
        if baseline:
            rows = [{"x": float(x)} for x in range(100)]
            baton.log_baseline(rows, [0.5 + 0.001 * row["x"] for row in rows], artifact_path="model")
    registered = baton.register_model("scorer", run_id=run.run_id, artifact_path="model", approve=approve)
    return int(registered["version"])


class Traffic:
    """Prediction requests through the gateway from a few threads; remembers every answer."""

    def __init__(self, url, threads=3):
        self.url = url + "/serve/scorer/predict"
        self.results = []  # (monotonic time, status or None, X-Baton-Version, error text)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(index,), daemon=True) for index in range(threads)]

    def run(self, index):
        count = 0
        while not self.stopping.is_set():
            count += 1
            body = json.dumps({"x": (count * 7 + index) % 100, "customer_id": f"C{index}-{count}"}).encode()
            request = urllib.request.Request(self.url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=15) as response:
                    response.read()
                    outcome = (response.status, response.headers.get("X-Baton-Version"), None)
            except urllib.error.HTTPError as error:
                outcome = (error.code, error.headers.get("X-Baton-Version"), error.read()[:200].decode("utf-8", "replace"))
            except (urllib.error.URLError, OSError) as error:
                outcome = (None, None, str(error))
            with self.lock:
                self.results.append((time.monotonic(),) + outcome)
            time.sleep(0.01)

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=20)

    def since(self, moment):
        with self.lock:
            return [result for result in self.results if result[0] >= moment]

    def wait_for(self, count, since, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.since(since)) < count:
            assert time.monotonic() < deadline, f"only {len(self.since(since))} answers in {timeout}s"
            time.sleep(0.05)


def versions(status):
    return ((status.get("stable") or {}).get("version"), (status.get("canary") or {}).get("version"))


def wait_for_status(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        status = baton.deployment_status("scorer")
        if condition(status):
            return status
        assert time.monotonic() < deadline, f"{what} within {timeout}s; status: {json.dumps(status)[:3000]}"
        time.sleep(0.2)


def check_bad_canary_rolled_back(server, traffic, version, name):
    """Starts `version` as a canary at 50 % and asserts Baton rolls it back within its analysis
    window, while stable answers every request of its own without a failure."""
    stable_version = baton.deployment_status("scorer")["stable"]["version"]
    started = time.monotonic()
    with pytest.raises(baton.CanaryRolledBack) as raised:
        # Rolled back before deploy_canary saw it take traffic is just as good: it raises too.
        baton.deploy_canary("scorer", model=f"models:/scorer/{version}", traffic_percent=50, timeout=60)
        baton.monitor_canary("scorer", duration_seconds=ROLLBACK_WITHIN, interval_seconds=0.5)
    took = time.monotonic() - started
    assert took < ROLLBACK_WITHIN, f"the {name} canary v{version} was rolled back only after {took:.1f}s"
    assert raised.value.rollout.get("state") == "rolled_back", raised.value.rollout
    assert f"v{version}" in str(raised.value)

    # Its replicas drain and stop; then the status shows stable alone.
    status = wait_for_status(lambda s: versions(s) == (stable_version, None),
                             f"the {name} canary v{version} gone after its rollback", timeout=30)
    assert status["traffic"].get("canary_percent", 0) == 0, status
    # The canary had its share: the failures are the canary's, and stable never failed.
    during = traffic.since(started)
    answered_by = {}
    for _, code, answered, error in during:
        assert code is not None, f"a request got no answer at all while the {name} canary ran: {error}"
        answered_by.setdefault(answered, []).append(code)
    assert answered_by.get(str(version)), f"the {name} canary v{version} never answered: {sorted(answered_by)}"
    stable_codes = answered_by.get(stable_version, [])
    assert stable_codes and all(code == 200 for code in stable_codes), \
        f"stable v{stable_version} failed {sum(code != 200 for code in stable_codes)} of {len(stable_codes)} requests"
    assert set(answered_by) <= {stable_version, str(version)}, sorted(answered_by)

    # After the rollback, stable answers everything, and everything succeeds (the second lets
    # answers already on their way through the gateway arrive).
    after = time.monotonic() + 1.0
    traffic.wait_for(30, since=after)
    later = traffic.since(after)
    assert all(code == 200 and answered == stable_version for _, code, answered, _ in later), later[:10]
    return took


def start_with_replica(baton_server, tmp_path, monkeypatch):
    """A fresh `baton up`, the test replica's script in a folder of its own, and the SDK and
    MLflow client pointed at the server (and at nothing a surrounding task set)."""
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    replica_dir = tmp_path / "replica"
    replica_dir.mkdir()
    (replica_dir / "replica.py").write_text(REPLICA)
    server = baton_server(pipelines)
    for key in ("BATON_TOKEN", "BATON_DB", "BATON_CLI", "BATON_URL", "BATON_PIPELINE", "BATON_TASK", "BATON_RUN_ID",
                "MLFLOW_TRACKING_TOKEN", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("BATON_SERVER", server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    return server, replica_dir


def test_canaries_are_analysed_rolled_back_or_promoted_and_crashed_replicas_restart(baton_server, tmp_path, monkeypatch):
    server, replica_dir = start_with_replica(baton_server, tmp_path, monkeypatch)

    # Only v1 is approved: the declared model (models:/scorer@champion) deploys it as soon as the
    # deployment exists. The candidates are registered but not approved.
    stable = register(tmp_path, {"score": 0.25}, baseline=True, approve=True)
    broken = register(tmp_path, {"score": 0.75, "fail_rate": 1.0})
    slow = register(tmp_path, {"score": 0.75, "delay_ms": 700})
    healthy = register(tmp_path, {"score": 0.5})
    assert [stable, broken, slow, healthy] == [1, 2, 3, 4]

    created = server.request("PUT", "/api/v1/deployments/scorer", spec(replica_dir))
    assert created.status in (200, 201), created
    listed = server.get("/api/v1/deployments")
    assert listed.status == 200 and "scorer" in listed.text, listed

    # The first deployment has nothing to compare with: it becomes stable directly.
    status = wait_for_status(lambda s: versions(s) == ("1", None), "the declared champion v1 stable")
    # Asking for a canary of the stable version itself is refused, naming the version.
    with pytest.raises(baton.DeploymentConflict) as refused:
        baton.deploy_canary("scorer", model=f"models:/scorer/{stable}", traffic_percent=10, timeout=60)
    assert "already the stable version" in str(refused.value), refused.value
    status = wait_for_status(lambda s: all(r["state"] == "healthy" for r in s["stable"]["replicas"]),
                             "both replicas of v1 healthy")
    replicas = status["stable"]["replicas"]
    assert len(replicas) == 2 and all(r["state"] == "healthy" and r["port"] and r["pid"] for r in replicas), replicas
    assert status["model"] == "models:/scorer@champion" and status["owner"] == "mlops"

    traffic = Traffic(server.url).start()
    try:
        began = time.monotonic()
        traffic.wait_for(30, since=began)
        first = traffic.since(began)
        assert all(code == 200 and answered == "1" for _, code, answered, _ in first), first[:10]

        # Canaries worse than stable are rolled back by Baton's analysis on its own.
        check_bad_canary_rolled_back(server, traffic, broken, "failing")
        check_bad_canary_rolled_back(server, traffic, slow, "slow")

        # A healthy canary: watched, validated with the SDK and promoted.
        status = baton.deploy_canary("scorer", model=f"models:/scorer/{healthy}", traffic_percent=50, timeout=60)
        assert versions(status) == ("1", "4"), status
        assert status["traffic"]["canary_percent"] == 50 and status["traffic"]["stable_percent"] == 50, status
        assert status["rollout"]["state"] == "progressing", status
        metrics = baton.monitor_canary("scorer", duration_seconds=3 * ANALYSIS_SECONDS, interval_seconds=0.5)
        assert metrics["rollout_state"] == "progressing", metrics
        assert metrics["canary"]["version"] == "4" and metrics["stable"]["version"] == "1", metrics
        assert metrics["canary"]["requests"] >= 10 and metrics["canary"]["errors"] == 0, metrics
        assert metrics["canary"]["p50_ms"] is not None and metrics["canary"]["p99_ms"] >= metrics["canary"]["p50_ms"], metrics
        verdict = baton.validate_metrics(metrics, max_error_rate=0.01, max_p99_latency_ms=250, min_requests=10)
        assert verdict, verdict.reason
        baton.deploy_full("scorer", reason="e2e: validation passed")
        status = wait_for_status(lambda s: versions(s) == ("4", None), "v4 stable alone after the promotion")
        assert status["rollout"]["state"] == "promoted", status
        assert status["traffic"].get("canary_percent", 0) == 0, status
        promoted = time.monotonic() + 0.5
        traffic.wait_for(30, since=promoted)
        assert all(code == 200 and answered == "4" for _, code, answered, _ in traffic.since(promoted)), \
            traffic.since(promoted)[:10]

        # A crashed replica is restarted by the supervisor (and takes traffic again once healthy).
        victim = status["stable"]["replicas"][0]
        os.kill(victim["pid"], signal.SIGKILL)

        def restarted(current):
            replica = next((r for r in current["stable"]["replicas"] if r["id"] == victim["id"]), None)
            return replica is not None and replica["state"] == "healthy" and replica["restarts"] >= 1 \
                and replica["pid"] != victim["pid"]
        status = wait_for_status(restarted, f"replica {victim['id']} restarted after SIGKILL", timeout=30)
        assert len(status["stable"]["replicas"]) == 2, status
        after = time.monotonic()
        traffic.wait_for(30, since=after)
        assert all(code == 200 and answered == "4" for _, code, answered, _ in traffic.since(after))
    finally:
        traffic.stop()

    # Every decision is in the audit trail, and the gateway's figures are on /metrics.
    events = json.dumps(baton.deployment_events("scorer"))
    assert "rolled_back" in events or "rollback" in events, events[:2000]
    assert "promot" in events and ("restart" in events or "crash" in events), events[:2000]
    exposition = server.get("/metrics").text
    for family in ("baton_serve_requests_total", "baton_serve_errors_total", "baton_serve_latency_seconds"):
        assert family in exposition and 'deployment="scorer"' in exposition, family
    assert server.get("/api/v1/deployments/scorer/stats").status == 200
    assert server.get("/api/v1/deployments/scorer/drift").status == 200


def test_deployment_refusals_name_what_is_wrong(baton_server, tmp_path, monkeypatch):
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    server = baton_server(pipelines)
    monkeypatch.setenv("BATON_SERVER", server.url)
    monkeypatch.delenv("BATON_TOKEN", raising=False)

    with pytest.raises(baton.DeploymentNotFound) as raised:
        baton.deployment_status("nope")
    assert raised.value.status == 404 and "nope" in str(raised.value)

    no_command = server.request("PUT", "/api/v1/deployments/bad", {"model": "models:/scorer/1", "health": "/health"})
    assert no_command.status == 400, no_command
    assert "command" in no_command.text, no_command

    zero = server.request("PUT", "/api/v1/deployments/bad", dict(spec(tmp_path), replicas=0))
    assert zero.status == 400 and "replicas" in zero.text, zero

    created = server.request("PUT", "/api/v1/deployments/empty", spec(tmp_path))
    assert created.status in (200, 201), created
    with pytest.raises(baton.DeploymentError) as raised:
        baton.deploy_canary("empty", model="models:/never_registered/1", wait=False)
    assert raised.value.status == 400 and "models:/never_registered/1" in str(raised.value)


def test_a_deployments_file_is_validated_and_served(baton_server, tmp_path):
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "deployments.yaml").write_text(textwrap.dedent(f'''
        deployments:
          from_file:
            owner: mlops
            model: models:/scorer@champion
            command: {shlex.quote(sys.executable)} replica.py
            health: /health
            replicas: 1
    '''))
    valid = subprocess.run([BINARY, "validate", str(pipelines)], capture_output=True, text=True, timeout=60)
    assert valid.returncode == 0, valid.stdout + valid.stderr

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "deployments.yaml").write_text("deployments:\n  bad:\n    model: models:/scorer/1\n    replicas: many\n")
    invalid = subprocess.run([BINARY, "validate", str(broken)], capture_output=True, text=True, timeout=60)
    assert invalid.returncode != 0, invalid.stdout
    assert "replicas" in invalid.stdout + invalid.stderr and "command" in invalid.stdout + invalid.stderr, \
        invalid.stdout + invalid.stderr

    server = baton_server(pipelines)
    status = server.get("/api/v1/deployments/from_file")
    assert status.status == 200, status
    document = status.json()
    assert document["name"] == "from_file" and document["owner"] == "mlops"
    assert document["model"] == "models:/scorer@champion"


def test_an_ab_test_compares_business_outcomes_per_variant(baton_server, tmp_path, monkeypatch):
    """A 50/50 A/B test started with the CLI; the application reports an outcome for every
    answered request through the SDK; the summary tells the better variant with intervals, and
    stays readable after the candidate is promoted."""
    import random

    server, replica_dir = start_with_replica(baton_server, tmp_path, monkeypatch)

    assert register(tmp_path, {"score": 0.3}, approve=True) == 1
    assert register(tmp_path, {"score": 0.6}) == 2
    created = server.request("PUT", "/api/v1/deployments/scorer", spec(replica_dir, replicas=1))
    assert created.status in (200, 201), created
    wait_for_status(lambda s: versions(s) == ("1", None) and s["stable"]["replicas"][0]["state"] == "healthy",
                    "v1 stable and healthy")

    # Before any test, the summary says how to start one.
    with pytest.raises(baton.BatonError) as none_yet:
        baton.ab_results("scorer")
    assert "no A/B test" in str(none_yet.value) and "baton deploy ab" in str(none_yet.value)

    cli_env = {**os.environ, "BATON_SERVER": server.url}
    started = subprocess.run([BINARY, "deploy", "ab", "scorer", "--model", "models:/scorer/2", "--percent", "50"],
                             capture_output=True, text=True, env=cli_env, timeout=60)
    assert started.returncode == 0, started.stderr
    assert "A/B test started" in started.stdout and "v2" in started.stdout, started.stdout
    status = wait_for_status(lambda s: versions(s) == ("1", "2") and any(
        r["state"] == "healthy" for r in s["canary"]["replicas"]), "the candidate v2 healthy")
    assert status["ab_test"]["state"] == "running" and status["ab_test"]["percent"] == 50, status["ab_test"]
    assert status["traffic"]["canary_percent"] == 50, status["traffic"]

    # The application: a prediction per customer, then whether the customer converted. The
    # candidate's customers convert twice as often; each customer also spends an amount.
    rates = {"1": 0.3, "2": 0.6}
    chance = random.Random(7)
    answered = {"1": 0, "2": 0}
    for index in range(400):
        prediction = baton.predict("scorer", {"x": index % 100}, key=f"customer-{index}")
        assert prediction.version in rates and prediction.request_id, (prediction.version, prediction.request_id)
        answered[prediction.version] += 1
        converted = chance.random() < rates[prediction.version]
        report = baton.send_feedback("scorer", prediction.request_id, "converted", converted)
        assert report["counted"] == 1 and report["items"][0]["version"] == prediction.version, report
        # Baskets follow the same sequence in both variants: no real difference to find.
        baton.send_feedback("scorer", prediction.request_id, "basket_eur", 40 + answered[prediction.version] % 21)
        if index == 0:
            again = baton.send_feedback("scorer", prediction.request_id, "converted", converted)
            assert again["counted"] == 0 and again["duplicates"] == 1, again
    assert min(answered.values()) > 120, f"a 50 % split with sticky keys over 400 customers: {answered}"

    summary = baton.ab_results("scorer")
    assert summary["stable"] == "1" and summary["candidate"] == "2" and summary["state"] == "running", summary
    metrics = {metric["name"]: metric for metric in summary["metrics"]}
    assert set(metrics) == {"converted", "basket_eur"}, metrics.keys()
    converted = metrics["converted"]
    assert converted["kind"] == "proportion"
    assert {version: converted["variants"][version]["count"] for version in ("1", "2")} == answered, converted
    for version, rate in rates.items():
        variant = converted["variants"][version]
        assert variant["low"] <= variant["mean"] <= variant["high"] and variant["low"] < rate < variant["high"], variant
    assert converted["significant"] is True and converted["higher"] == "2", converted
    assert 0.1 < converted["difference"]["low"] < 0.3 < converted["difference"]["high"], converted["difference"]
    basket = metrics["basket_eur"]
    assert basket["kind"] == "mean" and basket["significant"] is False and basket["higher"] is None, basket
    assert 45 < basket["variants"]["1"]["mean"] < 55, basket

    status_text = subprocess.run([BINARY, "deploy", "status", "scorer"], capture_output=True, text=True, env=cli_env, timeout=60)
    assert status_text.returncode == 0, status_text.stderr
    assert "stable 50 %, canary 50 %" in status_text.stdout, status_text.stdout
    assert "no baseline.json recorded with v1, v2" in status_text.stdout, status_text.stdout

    shown = subprocess.run([BINARY, "deploy", "ab", "scorer"], capture_output=True, text=True, env=cli_env, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "converted" in shown.stdout and "v2 is higher" in shown.stdout, shown.stdout
    assert "basket_eur" in shown.stdout and "no significant difference" in shown.stdout, shown.stdout

    # A report for a request the gateway never answered is refused with what to do instead.
    with pytest.raises(baton.BatonError) as unknown:
        baton.send_feedback("scorer", "not-a-request", "converted", 1)
    assert "not-a-request" in str(unknown.value) and "version" in str(unknown.value)

    # The winner is promoted; the test's summary stays readable, now ended.
    baton.deploy_full("scorer", reason="A/B test: v2 converts better")
    wait_for_status(lambda s: versions(s) == ("2", None), "v2 stable after the promotion")
    # The old stable's replica leaves routing and stops as soon as its requests are answered,
    # well before the 10 s a drain may take at most.
    def drained(events):
        draining = [e for e in events if e["action"] == "replica.draining" and e.get("version") == "1"]
        stopped = [e for e in events if e["action"] == "replica.stopped" and e.get("version") == "1"]
        return draining, stopped
    deadline = time.monotonic() + 30
    while True:
        draining, stopped = drained(baton.deployment_events("scorer")["items"])
        if draining and stopped:
            break
        assert time.monotonic() < deadline, "v1's replica never stopped after the promotion"
        time.sleep(0.2)
    from datetime import datetime
    took = (datetime.fromisoformat(stopped[0]["at"].replace("Z", "+00:00"))
            - datetime.fromisoformat(draining[0]["at"].replace("Z", "+00:00"))).total_seconds()
    assert took < 5, f"the drain of an idle replica took {took:.1f}s"

    ended = baton.ab_results("scorer")
    assert ended["state"] == "ended" and ended["ended_at"], ended
    assert {m["name"]: m["higher"] for m in ended["metrics"]}["converted"] == "2", ended

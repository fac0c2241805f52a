"""Model deployment helpers and log_baseline against a stand-in for Baton's API and gateway."""

import http.server
import json
import threading

import pytest

import baton
from baton import _baseline, _deploy, _registry


class FakeBaton:
    """Answers from a script of (method, path) -> answers and records every request. A list of
    answers is played in order, its last one repeated (a status that changes between polls)."""

    def __init__(self):
        self.requests = []
        self.answers = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                with fake.lock:
                    fake.requests.append({"method": self.command, "path": self.path, "body": body,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                    script = fake.answers.get((self.command, self.path), (200, {}))
                    if isinstance(script, list):
                        current = script.pop(0) if len(script) > 1 else script[0]
                    else:
                        current = script
                status, document = current[0], current[1]
                headers = current[2] if len(current) > 2 else {}
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = answer
            do_POST = answer
            do_PUT = answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def calls(self, method=None, prefix=""):
        return [(r["method"], r["path"]) for r in self.requests
                if (method is None or r["method"] == method) and r["path"].startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake(monkeypatch):
    server = FakeBaton()
    for key in ("BATON_DB", "BATON_CLI", "BATON_URL", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("BATON_SERVER", server.url)
    monkeypatch.setenv("BATON_TOKEN", "secret-token")
    monkeypatch.setenv("BATON_PIPELINE", "model_deployment_pipeline")
    monkeypatch.setenv("BATON_TASK", "deploy_full")
    monkeypatch.setenv("BATON_RUN_ID", "12")
    monkeypatch.setattr(_deploy, "_POLL_SECONDS", 0.01)
    monkeypatch.setattr(_registry, "_active_run", None)
    yield server
    server.close()


STATUS = "/api/v1/deployments/churn"


def replica(version, state, index=0, restarts=0):
    return {"id": f"churn-{version}-{index}", "port": 41000 + index, "pid": 800 + index, "state": state,
            "restarts": restarts}


def status(stable="3", canary=None, canary_state="healthy", percent=10, rollout_state="progressing",
           stats=None, last_analysis=None, mode="split"):
    document = {"name": "churn", "owner": "mlops", "model": "models:/churn@champion",
                "stable": {"version": stable, "model_uri": f"models:/churn/{stable}",
                           "replicas": [replica(stable, "healthy")]} if stable else None,
                "canary": None, "traffic": {"mode": mode, "stable_percent": 100, "canary_percent": 0},
                "rollout": None, "stats": stats or {}}
    if canary:
        document["canary"] = {"version": canary, "model_uri": f"models:/churn/{canary}",
                              "replicas": [replica(canary, canary_state)]}
        document["traffic"] = {"mode": mode, "stable_percent": 100 - percent, "canary_percent": percent}
    if rollout_state:
        document["rollout"] = {"state": rollout_state, "step": 0, "steps": [], "last_analysis": last_analysis}
    return document


# ---------------------------------------------------------------------------------------------
# deploy_canary
# ---------------------------------------------------------------------------------------------

def test_deploy_canary_posts_the_canary_and_waits_until_it_takes_traffic(fake):
    fake.answers[("GET", "/api/v1/models/churn/approved?alias=champion")] = (200, {"version": 4, "aliases": ["champion"]})
    fake.answers[("POST", STATUS + "/canary")] = (201, {"accepted": True})
    fake.answers[("GET", STATUS)] = [
        (200, status(canary="4", canary_state="starting")),
        (200, status(canary="4", canary_state="starting")),
        (200, status(canary="4", canary_state="healthy", percent=10)),
    ]
    answer = baton.deploy_canary("churn", model="models:/churn@champion", traffic_percent=10)
    assert answer["canary"]["version"] == "4"
    assert fake.calls() == [
        ("GET", "/api/v1/models/churn/approved?alias=champion"),
        ("POST", STATUS + "/canary"),
        ("GET", STATUS), ("GET", STATUS), ("GET", STATUS),
    ]
    post = fake.requests[1]
    assert post["body"] == {"model": "models:/churn@champion", "percent": 10, "shadow": False}
    assert post["headers"]["authorization"] == "Bearer secret-token"
    assert post["headers"]["content-type"] == "application/json"


def test_deploy_canary_defaults_to_the_deployments_model_and_a_first_deployment_becomes_stable(fake):
    fake.answers[("GET", STATUS)] = [
        (200, dict(status(stable=None, rollout_state=None), model="models:/churn/1")),
        (200, status(stable=None, rollout_state=None)),
        (200, status(stable="1", rollout_state=None)),
    ]
    fake.answers[("POST", STATUS + "/canary")] = (201, {})
    answer = baton.deploy_canary("churn", traffic_percent=25, shadow=True, steps=[{"percent": 25, "duration": "1m"}])
    assert answer["stable"]["version"] == "1"
    assert fake.requests[1]["body"] == {"model": "models:/churn/1", "percent": 25, "shadow": True,
                                        "steps": [{"percent": 25, "duration": "1m"}]}
    assert fake.calls() == [("GET", STATUS), ("POST", STATUS + "/canary"), ("GET", STATUS), ("GET", STATUS)]


def test_deploy_canary_without_wait_returns_the_servers_answer(fake):
    fake.answers[("POST", STATUS + "/canary")] = (201, {"canary": {"version": "5"}})
    assert baton.deploy_canary("churn", model="models:/churn/5", wait=False) == {"canary": {"version": "5"}}
    assert fake.calls() == [("POST", STATUS + "/canary")]


def test_deploy_canary_raises_when_the_canary_is_rolled_back_while_starting(fake):
    fake.answers[("POST", STATUS + "/canary")] = (201, {})
    fake.answers[("GET", STATUS)] = [
        (200, status(canary="4", canary_state="crashed")),
        (200, status(canary=None, rollout_state="rolled_back",
                     last_analysis={"reason": "canary error rate 0.5 > max 0.01 (stable 0.0)"})),
    ]
    with pytest.raises(baton.CanaryRolledBack) as raised:
        baton.deploy_canary("churn", model="models:/churn/4")
    assert str(raised.value).startswith(
        "the canary v4 of deployment churn was rolled back: canary error rate 0.5 > max 0.01 (stable 0.0)")
    assert raised.value.rollout["state"] == "rolled_back"
    assert isinstance(raised.value, baton.DeploymentError) and isinstance(raised.value, baton.BatonAPIError)


def test_a_rolled_back_canary_still_listed_while_it_drains_is_rolled_back(fake):
    fake.answers[("POST", STATUS + "/canary")] = (201, {})
    fake.answers[("GET", STATUS)] = (200, status(canary="4", canary_state="draining", percent=0,
                                                 rollout_state="rolled_back", last_analysis={"reason": "p99 900ms > 250ms"}))
    with pytest.raises(baton.CanaryRolledBack, match="was rolled back: p99 900ms > 250ms"):
        baton.deploy_canary("churn", model="models:/churn/4")
    fake.answers[("GET", STATUS)] = [(200, status(canary="4")), (200, status(
        canary="4", canary_state="draining", percent=0, rollout_state="aborted"))]
    with pytest.raises(baton.CanaryRolledBack, match="canary v4 of deployment churn was aborted"):
        baton.monitor_canary("churn", duration_seconds=30, interval_seconds=0.05)


def test_deploy_canary_times_out_naming_the_replicas(fake):
    fake.answers[("POST", STATUS + "/canary")] = (201, {})
    fake.answers[("GET", STATUS)] = (200, status(canary="4", canary_state="crashed"))
    with pytest.raises(baton.DeploymentTimeout, match=r"v4 of deployment churn does not take traffic after 0.2s "
                                                      r"\(replicas: churn-4-0 crashed\)"):
        baton.deploy_canary("churn", model="models:/churn/4", timeout=0.2)


def test_refusals_are_typed_and_carry_the_servers_message(fake):
    fake.answers[("POST", "/api/v1/deployments/nope/canary")] = (
        404, {"error": {"code": "not_found", "message": "no deployment named 'nope'", "field": "name"}})
    with pytest.raises(baton.DeploymentNotFound) as raised:
        baton.deploy_canary("nope", model="models:/churn/4")
    assert raised.value.status == 404 and raised.value.code == "not_found"
    assert str(raised.value) == "Baton refused POST /api/v1/deployments/nope/canary: no deployment named 'nope' (field name)"

    fake.answers[("POST", STATUS + "/canary")] = (
        409, {"error": {"code": "conflict", "message": "a rollout of v4 is in progress"}})
    with pytest.raises(baton.DeploymentConflict, match="a rollout of v4 is in progress"):
        baton.deploy_canary("churn", model="models:/churn/5")

    fake.answers[("POST", STATUS + "/canary")] = (
        400, {"error": {"code": "bad_request", "message": "model reference models:/churn/99 does not resolve",
                        "field": "model"}})
    with pytest.raises(baton.DeploymentError, match="models:/churn/99 does not resolve") as raised:
        baton.deploy_canary("churn", model="models:/churn/99")
    assert raised.value.status == 400 and raised.value.field == "model"

    fake.answers[("GET", "/api/v1/models/churn/approved?alias=champion")] = (
        404, {"error": {"code": "not_found", "message": "model 'churn' has no version with alias 'champion'"}})
    with pytest.raises(baton.DeploymentError, match="models:/churn@champion does not resolve"):
        baton.deploy_canary("churn", model="models:/churn@champion")


def test_bad_arguments_are_refused_before_any_request(fake):
    with pytest.raises(baton.BatonError, match=r"traffic_percent must be a number in \(0, 100\]"):
        baton.deploy_canary("churn", model="models:/churn/4", traffic_percent=0)
    with pytest.raises(baton.BatonError, match="non-empty string"):
        baton.deployment_status("")
    assert fake.requests == []


def test_outside_baton_the_helpers_say_what_to_set(monkeypatch):
    for key in ("BATON_SERVER", "BATON_URL"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(baton.BatonError) as raised:
        baton.deploy_full("churn")
    assert "deploy_full() needs the Baton server" in str(raised.value) and "BATON_SERVER" in raised.value.fix


# ---------------------------------------------------------------------------------------------
# promote, rollback, status, feedback
# ---------------------------------------------------------------------------------------------

def test_promote_and_rollback_send_the_reason_or_the_task_that_decided(fake):
    fake.answers[("POST", STATUS + "/promote")] = (200, {"stable": {"version": "4"}})
    assert baton.deploy_full("churn", reason="validation passed") == {"stable": {"version": "4"}}
    assert fake.requests[-1]["body"] == {"reason": "validation passed"}
    baton.deploy_full("churn")
    assert fake.requests[-1]["body"] == {"reason": "pipeline model_deployment_pipeline run 12 task deploy_full"}
    baton.rollback("churn", reason="validation failed")
    assert fake.calls() == [("POST", STATUS + "/promote"), ("POST", STATUS + "/promote"), ("POST", STATUS + "/rollback")]
    assert fake.requests[-1]["body"] == {"reason": "validation failed"}


def test_status_and_events_quote_the_name(fake):
    fake.answers[("GET", "/api/v1/deployments/churn%2Fa%20b")] = (200, {"name": "churn/a b"})
    assert baton.deployment_status("churn/a b") == {"name": "churn/a b"}
    baton.deployment_events("churn")
    assert fake.calls()[-1] == ("GET", STATUS + "/events")


def test_predict_and_feedback_go_through_the_gateway(fake):
    fake.answers[("POST", "/serve/churn/predict")] = (
        200, {"prediction": 0.7, "churn": True}, {"X-Baton-Version": "4", "X-Baton-Request-Id": "req-1"})
    prediction = baton.predict("churn", {"customer_id": "C0001"}, key="C0001")
    assert prediction == {"prediction": 0.7, "churn": True}
    assert (prediction.version, prediction.request_id) == ("4", "req-1")
    assert fake.requests[-1]["headers"]["x-baton-key"] == "C0001"
    assert fake.requests[-1]["body"] == {"customer_id": "C0001"}

    fake.answers[("POST", "/serve/churn/feedback")] = (202, {"recorded": True})
    baton.send_feedback("churn", prediction.request_id, "converted", True)
    assert fake.requests[-1]["body"] == {"request_id": "req-1", "metric": "converted", "value": 1}
    with pytest.raises(baton.BatonError, match="needs a finite number"):
        baton.send_feedback("churn", "req-1", "converted", "yes")

    fake.answers[("POST", "/serve/churn/predict")] = (
        503, {"error": {"code": "unavailable", "message": "no healthy replica of churn"}})
    with pytest.raises(baton.PredictionError, match="answered HTTP 503: no healthy replica of churn") as raised:
        baton.predict("churn", {"customer_id": "C0001"})
    assert raised.value.status == 503


# ---------------------------------------------------------------------------------------------
# monitor_canary
# ---------------------------------------------------------------------------------------------

STATS = {"3": {"requests": 900, "errors": 9, "error_rate": 0.01, "p50_ms": 2.1, "p99_ms": 6.0},
         "4": {"requests": 100, "errors": 0, "error_rate": 0.0, "p50_ms": 2.3, "p99_ms": 7.1}}


def test_monitor_canary_polls_for_the_duration_and_returns_both_versions_figures(fake):
    fake.answers[("GET", STATUS)] = [(200, status(canary="4", stats={})),
                                     (200, status(canary="4", stats=STATS, last_analysis={"passed": True}))]
    seen = []
    metrics = baton.monitor_canary("churn", duration_seconds=0.25, interval_seconds=0.1, on_sample=seen.append)
    assert fake.calls() == [("GET", STATUS)] * 4
    assert len(seen) == 4 and metrics["samples"] == 4
    assert metrics["canary"] == {"version": "4", "requests": 100, "errors": 0, "error_rate": 0.0, "p50_ms": 2.3, "p99_ms": 7.1}
    assert metrics["stable"] == {"version": "3", "requests": 900, "errors": 9, "error_rate": 0.01, "p50_ms": 2.1, "p99_ms": 6.0}
    assert metrics["rollout_state"] == "progressing"
    assert metrics["traffic"] == {"mode": "split", "stable_percent": 90, "canary_percent": 10}
    assert metrics["last_analysis"] == {"passed": True}
    assert 0.25 <= metrics["duration_seconds"] < 2


def test_monitor_canary_fails_fast_when_baton_rolls_the_canary_back(fake):
    rolled_back = status(canary=None, rollout_state="rolled_back", stats=STATS,
                         last_analysis={"passed": False, "checks": [
                             {"name": "max_error_rate", "passed": False, "detail": "canary error rate 0.4 > 0.01"}]})
    fake.answers[("GET", STATUS)] = [(200, status(canary="4")), (200, rolled_back)]
    with pytest.raises(baton.CanaryRolledBack, match="canary v4 of deployment churn was rolled back: canary error rate 0.4 > 0.01"):
        baton.monitor_canary("churn", duration_seconds=30, interval_seconds=0.05)
    assert len(fake.requests) == 2  # not the whole 30 s


def test_monitor_canary_stops_early_on_a_promotion_and_without_a_canary_reports_stable(fake):
    promoted = status(stable="4", canary=None, rollout_state="promoted", stats=STATS)
    fake.answers[("GET", STATUS)] = [(200, status(canary="4")), (200, promoted)]
    metrics = baton.monitor_canary("churn", duration_seconds=30, interval_seconds=0.05)
    assert metrics["rollout_state"] == "promoted" and metrics["canary"]["version"] == "4"
    assert len(fake.requests) == 2

    fake.requests.clear()
    fake.answers[("GET", STATUS)] = (200, status(stable="3", canary=None, rollout_state=None, stats=STATS))
    metrics = baton.monitor_canary("churn", duration_seconds=0, interval_seconds=1)
    assert metrics["canary"] is None and metrics["stable"]["requests"] == 900
    assert len(fake.requests) == 1


# ---------------------------------------------------------------------------------------------
# validate_metrics
# ---------------------------------------------------------------------------------------------

def monitored(canary=None, stable=None):
    return {"canary": dict({"version": "4", "requests": 100, "errors": 0, "error_rate": 0.0, "p50_ms": 2.0,
                            "p99_ms": 7.0}, **(canary or {})),
            "stable": dict({"version": "3", "requests": 900, "errors": 0, "error_rate": 0.0, "p50_ms": 2.0,
                            "p99_ms": 5.0}, **(stable or {}))}


def test_validate_metrics_passes_and_is_truthy():
    result = baton.validate_metrics(monitored(), max_error_rate=0.01, max_p99_latency_ms=50, min_requests=50)
    assert result and result.passed and result.failures == []
    assert [check.name for check in result.checks] == ["min_requests", "max_error_rate", "max_p99_latency_ms"]
    assert result.reason.startswith("all checks passed: canary requests 100 >= min 50")
    assert result.to_dict()["passed"] is True


def test_validate_metrics_names_each_failed_check():
    result = baton.validate_metrics(
        monitored(canary={"requests": 20, "error_rate": 0.05, "p99_ms": 80.0, "accuracy": 0.5}, stable={"error_rate": 0.01}),
        max_error_rate=0.01, max_p99_latency_ms=50, min_requests=50, max_error_rate_increase=0.005,
        max_p99_latency_ratio=1.5, min_accuracy=0.6)
    assert not result
    assert result.failures == [
        "canary requests 20 < min 50",
        "canary error rate 0.05 > max 0.01",
        "canary p99 latency 80ms > max 50ms",
        "error rate increase over stable 0.04 > max 0.005",
        "p99 latency ratio to stable 16 > max 1.5",
        "accuracy 0.5 < min 0.6",
    ]
    assert result.reason == "; ".join(result.failures)


def test_validate_metrics_on_flat_figures_missing_figures_and_no_canary():
    assert baton.validate_metrics({"error_rate": 0.0, "latency_ms_p99": 3.0}, max_error_rate=0.01, max_p99_latency_ms=5)
    result = baton.validate_metrics({"error_rate": 0.0}, max_p99_latency_ms=5, min_accuracy=0.6)
    assert result.failures == ["canary p99 latency: no figure (limit 5ms)", "accuracy: no figure (limit 0.6)"]
    result = baton.validate_metrics({"canary": None, "stable": {"requests": 5}}, max_error_rate=0.01)
    assert not result and result.failures == ["no canary figures (no canary was monitored)"]
    with pytest.raises(baton.BatonError, match="unknown threshold accuracy="):
        baton.validate_metrics(monitored(), accuracy=0.6)


# ---------------------------------------------------------------------------------------------
# log_baseline
# ---------------------------------------------------------------------------------------------

def test_baseline_bins_are_deciles_with_shares():
    rows = [{"customer_id": f"C{i:04d}", "spend": float(i), "plan": "basic", "clicks": 0 if i < 50 else 1,
             "days": "" if i == 0 else str(i)} for i in range(100)]
    document = baton.build_baseline(rows, [i / 100 for i in range(100)])
    assert document["format"] == "baton.baseline/1" and document["bins"] == 10 and document["rows"] == 100
    assert sorted(document["features"]) == ["clicks", "days", "spend"]
    assert document["skipped_features"] == ["customer_id", "plan"]
    spend = document["features"]["spend"]
    assert spend["edges"] == [0.0, 9.9, 19.8, 29.7, 39.6, 49.5, 59.4, 69.3, 79.2, 89.1, 99.0]
    assert spend["shares"] == [0.1] * 10 and spend["count"] == 100 and spend["missing"] == 0
    # A two-valued feature: the repeated deciles collapse to distinct edges.
    clicks = document["features"]["clicks"]
    assert clicks["edges"] == [0.0, 0.5, 1.0] and clicks["shares"] == [0.5, 0.5]
    assert document["features"]["days"]["missing"] == 1 and document["features"]["days"]["count"] == 99
    assert len(document["predictions"]["edges"]) == 11 and abs(sum(document["predictions"]["shares"]) - 1) < 1e-9
    constant = baton.build_baseline({"x": [3, 3, 3]}, [0.1, 0.1, 0.1])
    assert constant["features"]["x"]["edges"] == [3.0, 3.0] and constant["features"]["x"]["shares"] == [1.0]


def test_bin_index_puts_out_of_range_values_in_the_end_bins():
    edges = [0.0, 1.0, 2.0, 3.0]
    assert [_baseline.bin_index(edges, v) for v in (-5, 0, 0.5, 1, 2.5, 3, 9)] == [0, 0, 0, 1, 2, 2, 2]
    assert _baseline.bin_index([3.0, 3.0], 10) == 0


def test_baseline_refuses_mismatched_or_non_numeric_predictions():
    with pytest.raises(baton.BatonError, match="got 2 feature rows but 3 predictions"):
        baton.build_baseline([{"x": 1}, {"x": 2}], [0.1, 0.2, 0.3])
    with pytest.raises(baton.BatonError, match="needs numeric predictions"):
        baton.build_baseline([{"x": 1}], ["yes"])


def test_log_baseline_uploads_baseline_json_to_the_open_run(fake, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fake.url)
    fake.answers[("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=churn_training")] = (
        200, {"experiment": {"experiment_id": "1"}})
    fake.answers[("POST", "/api/2.0/mlflow/runs/create")] = (
        200, {"run": {"info": {"run_id": "abc", "experiment_id": "1", "artifact_uri": "mlflow-artifacts:/1/abc/artifacts"}}})
    with baton.start_run("churn_training") as run:
        document = baton.log_baseline([{"x": 1.0}, {"x": 2.0}], [0.2, 0.8], artifact_path="model")
        assert baton.active_run() is run
    assert baton.active_run() is None
    [upload] = [r for r in fake.requests if r["method"] == "PUT"]
    assert upload["path"] == "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/baseline.json"
    assert upload["body"] == document and document["predictions"]["edges"][0] == 0.2

    # An ended run, by id.
    fake.answers[("GET", "/api/2.0/mlflow/runs/get?run_id=abc")] = (
        200, {"run": {"info": {"run_id": "abc", "experiment_id": "1", "artifact_uri": "mlflow-artifacts:/1/abc/artifacts"}}})
    baton.log_baseline({"x": [1, 2]}, [0.1, 0.9], run="abc")
    assert fake.requests[-1]["method"] == "PUT"
    assert fake.requests[-1]["path"] == "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/baseline.json"

    with pytest.raises(baton.BatonError, match="needs a tracking run"):
        baton.log_baseline({"x": [1]}, [0.5])

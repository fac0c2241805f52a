"""Events, metrics and freshness checks against a stand-in for Baton's REST API."""

import datetime
import http.server
import json
import threading

import pytest

import baton
from baton import DataSLAViolation, check_data_freshness, emit_metric, publish_event
from helpers import describe, write


class FakeBaton:
    """Answers like Baton's API and remembers every request."""

    def __init__(self):
        self.requests = []
        self.answers = {}
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append({"method": self.command, "path": self.path, "body": body,
                                      "authorization": self.headers.get("Authorization")})
                status, document = fake.answers.get((self.command, self.path), (200, {}))
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = answer
            do_POST = answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake(monkeypatch):
    server = FakeBaton()
    for key in ("BATON_DB", "BATON_CLI", "BATON_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("BATON_SERVER", server.url)
    monkeypatch.setenv("BATON_TOKEN", "secret-token")
    monkeypatch.setenv("BATON_RUN_ID", "7")
    monkeypatch.setenv("BATON_PIPELINE", "customer_data_pipeline")
    monkeypatch.setenv("BATON_TASK", "publish")
    monkeypatch.setattr(baton._client, "_published", {})
    yield server
    server.close()


def test_publish_event_sends_json_with_a_retry_safe_id(fake):
    fake.answers[("POST", "/api/v1/events")] = (201, {"duplicate": False, "run_ids": [3]})
    when = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.timezone.utc)
    answer = publish_event("data.customers.updated", {"timestamp": when, "record_count": 1000000})
    assert answer["run_ids"] == [3]
    request = fake.requests[-1]
    assert request["authorization"] == "Bearer secret-token"
    assert request["body"] == {
        "name": "data.customers.updated",
        "payload": {"timestamp": "2026-11-25T12:00:00Z", "record_count": 1000000},
        "id": "run-7-publish-data.customers.updated",
        "source": "customer_data_pipeline.publish",
    }
    publish_event("data.customers.updated", {}, id=None)
    assert fake.requests[-1]["body"]["id"] == "run-7-publish-data.customers.updated-2"
    publish_event("data.customers.updated", {}, id="customers-2026-11-25", source="data_engineering")
    assert fake.requests[-1]["body"]["id"] == "customers-2026-11-25"
    assert fake.requests[-1]["body"]["source"] == "data_engineering"


def test_refusals_carry_the_servers_message(fake):
    fake.answers[("POST", "/api/v1/events")] = (
        400, {"error": {"code": "bad_request", "message": "event name 'a b' must be 1-200 letters", "field": "name"}})
    with pytest.raises(baton.BatonAPIError) as raised:
        publish_event("a b", {})
    assert raised.value.status == 400
    assert str(raised.value) == "Baton refused POST /api/v1/events: event name 'a b' must be 1-200 letters (field name)"
    with pytest.raises(baton.BatonError, match="the payload of event 'x' must be a dict"):
        publish_event("x", [1, 2])


def test_emit_metric(fake):
    fake.answers[("POST", "/api/v1/metrics")] = (201, {"recorded": 1})
    emit_metric("pipeline.duration", 42.5, tags={"pipeline": "customer_features", "owner": "data_engineering"})
    assert fake.requests[-1]["body"] == {
        "name": "pipeline.duration", "value": 42.5,
        "tags": {"pipeline": "customer_features", "owner": "data_engineering"}}
    emit_metric("rows", 3, timestamp=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc))
    assert fake.requests[-1]["body"]["timestamp"] == "2026-01-02T03:04:05Z"
    with pytest.raises(baton.BatonError, match="metric 'rows' needs a number, got str"):
        emit_metric("rows", "12")


def dataset(age_seconds, last_update=True):
    return {"name": "clean_customers", "owner": "data_engineering", "age_seconds": age_seconds,
            "last_update": {"updated_at": "2026-11-25T09:00:00Z", "run_id": 12, "pipeline": "customer_data_pipeline"}
            if last_update else None}


def test_check_data_freshness_returns_the_age_and_raises_past_the_limit(fake):
    fake.answers[("GET", "/api/v1/datasets/clean_customers")] = (200, {"dataset": dataset(3 * 3600 + 5)})
    age = check_data_freshness("clean_customers")
    assert age == datetime.timedelta(seconds=3 * 3600 + 5)
    with pytest.raises(DataSLAViolation) as raised:
        check_data_freshness("clean_customers", max_staleness="2h")
    assert str(raised.value) == (
        "dataset clean_customers is 3h5s old, over the 2h limit (last update 2026-11-25 09:00:00 UTC by run 12 of "
        "customer_data_pipeline, owner data_engineering)")
    assert raised.value.dataset == "clean_customers"
    assert raised.value.limit == datetime.timedelta(hours=2)

    # The lecture's own check: compare, then raise with a short message; the violation adds
    # what the check found.
    freshness = check_data_freshness("clean_customers")
    assert freshness > datetime.timedelta(hours=2)
    violation = DataSLAViolation("Data is too stale")
    assert str(violation) == (
        "Data is too stale: dataset clean_customers is 3h5s old (last update 2026-11-25 09:00:00 UTC by run 12 of "
        "customer_data_pipeline, owner data_engineering)")


def test_a_dataset_never_updated_or_unknown(fake):
    fake.answers[("GET", "/api/v1/datasets/clean_customers")] = (200, {"dataset": dataset(None, last_update=False)})
    with pytest.raises(DataSLAViolation, match=r"^dataset clean_customers has never been updated \(owner data_engineering\)$"):
        check_data_freshness("clean_customers")
    fake.answers[("GET", "/api/v1/datasets/clean_customer")] = (
        404, {"error": {"code": "not_found", "message": "no dataset named 'clean_customer'; did you mean 'clean_customers'?",
                        "field": "dataset"}})
    with pytest.raises(baton.BatonAPIError, match="did you mean 'clean_customers'"):
        check_data_freshness("clean_customer")


def test_outside_baton_the_functions_say_what_is_missing(monkeypatch):
    for key in ("BATON_SERVER", "BATON_URL", "BATON_DB", "BATON_CLI"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(baton.BatonError) as raised:
        emit_metric("x", 1)
    assert "emit_metric() needs a Baton to talk to" in str(raised.value)
    assert "BATON_SERVER" in raised.value.fix


def test_calling_them_in_the_pipeline_function_is_an_error_at_that_line(tmp_path):
    path = write(tmp_path, "early.py", """
        from baton import dag, task, publish_event

        @task
        def a(): pass

        @dag
        def early():
            a()
            publish_event("too.early", {})
    """)
    [issue] = describe(path)["issues"]
    assert issue["line"] == 9
    assert issue["message"].startswith("publish_event() is called in the pipeline function")
    assert issue["fix"] == "call publish_event() inside a @task function"

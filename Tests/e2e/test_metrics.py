"""The Prometheus exposition of a real `baton up` after runs have finished: it parses with
the official Python parser, `promtool check metrics` accepts it, and the metrics issue 3 asks
for are there with sensible labels."""

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import write_pipelines

PIPELINES = {
    "nightly": """
name: nightly
owner: data_eng
tasks:
  extract:
    run: echo extracted
  load:
    needs: [extract]
    run: echo loaded
""",
    "broken": """
name: broken
owner: ml_team
tasks:
  fail:
    run: exit 4
""",
}

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@pytest.fixture
def finished(baton_server, tmp_path):
    folder = write_pipelines(tmp_path / "pipelines", PIPELINES)
    server = baton_server(folder, args=("--slots", "3"))
    runs = [server.post("/api/v1/runs", {"pipeline": name}).json() for name in ("nightly", "nightly", "broken")]
    states = [server.wait_for_run(run["id"])["state"] for run in runs]
    assert states == ["success", "success", "failed"]
    result = server.get("/metrics")
    assert result.status == 200, result
    return server, result


def families(text):
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family, suffix=""):
    return [sample for sample in family.samples if sample.name == family.name + suffix]


def test_exposition_parses_and_passes_promtool(finished):
    _, result = finished
    assert result.content_type.startswith("text/plain")
    assert "version=0.0.4" in result.content_type
    parsed = families(result.text)
    assert parsed, "no metric families"
    for family in parsed.values():
        assert family.documentation, f"{family.name} has no HELP text"
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=result.text, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"promtool check metrics failed:\n{checked.stdout}{checked.stderr}"


def test_issue_3_metrics_have_sensible_labels(finished):
    _, result = finished
    parsed = families(result.text)

    # Counters: prometheus_client names the family without `_total`.
    started = parsed["baton_runs_started"]
    assert started.type == "counter"
    by_pipeline = {(s.labels["pipeline"], s.labels["owner"]): s.value for s in samples(started, "_total")}
    assert by_pipeline[("nightly", "data_eng")] == 2
    assert by_pipeline[("broken", "ml_team")] == 1

    finished_runs = parsed["baton_runs_finished"]
    assert finished_runs.type == "counter"
    by_state = {(s.labels["pipeline"], s.labels["owner"], s.labels["state"]): s.value for s in samples(finished_runs, "_total")}
    assert by_state[("nightly", "data_eng", "success")] == 2
    assert by_state[("broken", "ml_team", "failed")] == 1
    assert all(labels[2] in ("success", "failed", "cancelled") for labels in by_state)

    run_duration = parsed["baton_run_duration_seconds"]
    assert run_duration.type == "histogram"
    assert {s.labels["state"] for s in samples(run_duration, "_count")} == {"success", "failed"}

    task_duration = parsed["baton_task_duration_seconds"]
    assert task_duration.type == "histogram"
    counts = {(s.labels["pipeline"], s.labels["owner"], s.labels["state"]): s.value for s in samples(task_duration, "_count")}
    assert counts[("nightly", "data_eng", "success")] == 4
    assert counts[("broken", "ml_team", "failed")] == 1
    buckets = samples(task_duration, "_bucket")
    assert any(s.labels["le"] == "+Inf" for s in buckets)
    assert {s.labels["le"] for s in buckets} > {"+Inf"}, "the histogram has real buckets"

    delay = parsed["baton_scheduling_delay_seconds"]
    assert delay.type == "histogram"
    assert samples(delay, "_count")[0].value >= 5, "one scheduling delay per started attempt"
    assert samples(delay, "_sum")[0].value >= 0

    for name in ("baton_queue_depth", "baton_busy_slots", "baton_worker_slots"):
        assert parsed[name].type == "gauge", name
    assert samples(parsed["baton_worker_slots"])[0].value == 3
    assert samples(parsed["baton_busy_slots"])[0].value >= 0
    assert samples(parsed["baton_queue_depth"])[0].value >= 0

    store = parsed["baton_store_commit_seconds"]
    assert store.type == "histogram"
    assert samples(store, "_count")[0].value > 0

    http = parsed["baton_http_request_duration_seconds"]
    assert http.type == "histogram"
    labels = {(s.labels["method"], s.labels["status"]) for s in samples(http, "_count")}
    assert ("POST", "201") in labels and ("GET", "200") in labels


def test_user_metrics_are_gauges_per_series(finished):
    """Issue 4: every stored metric series' latest value, as `baton_user_metric` gauges
    labelled with the metric's name and its tags (here the engine's per-run points, and one
    posted through the API with a tag key that needs sanitizing)."""
    server, _ = finished
    posted = server.post("/api/v1/metrics", {"name": "model.auc", "value": 0.91, "tags": {"model.name": "churn", "name": "x"}})
    assert posted.status == 201, posted
    result = server.get("/metrics")
    parsed = families(result.text)
    family = parsed["baton_user_metric"]
    assert family.type == "gauge"
    assert family.documentation
    by_labels = {tuple(sorted(sample.labels.items())): sample.value for sample in samples(family)}
    durations = [labels for labels in by_labels if ("name", "pipeline.duration") in labels]
    assert {dict(labels)["pipeline"] for labels in durations} == {"nightly", "broken"}
    assert all(dict(labels)["owner"] in ("data_eng", "ml_team") for labels in durations)
    success = {dict(labels)["pipeline"]: value for labels, value in by_labels.items() if ("name", "pipeline.success") in labels}
    assert success == {"nightly": 1, "broken": 0}
    assert by_labels[(("model_name", "churn"), ("name", "model.auc"), ("tag_name", "x"))] == 0.91
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=result.text, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"promtool check metrics failed:\n{checked.stdout}{checked.stderr}"

"""Python pipelines through the real binary: `baton up` reads `*.py` files with the SDK in a
child process, runs each task in a fresh Python process, passes results between them, retries,
starts runs from events the tasks publish, and reports broken files and raising tasks with
their Python locations."""

import json
import pathlib
import shutil
import subprocess
import textwrap
import time

import pytest

from conftest import BINARY, REPO, start_baton

PIPELINES = {
    "flow_data.py": '''
        from baton import dag, task

        @task
        def extract(source):
            return {"source": source, "rows": [1, 2, 3]}

        @task
        def total(parts, scale):
            return sum(sum(part["rows"]) for part in parts) * scale

        @task
        def report(value, label):
            print(f"{label}: {value}")
            return {"report": f"{label}={value}"}

        @dag(owner="data_team", params={"scale": 10})
        def flow_data(scale):
            a = extract("crm")
            b = extract("shop")
            report(total([a, b], scale), label="total")
    ''',
    "flaky.py": '''
        from baton import dag, get_context, task

        @task(retries=2, retry_delay=0.2)
        def sometimes():
            attempt = get_context().attempt
            if attempt < 2:
                raise ConnectionError(f"source unavailable on attempt {attempt}")
            return {"attempt": attempt}

        @dag
        def flaky():
            sometimes()
    ''',
    "announce.py": '''
        from baton import dag, emit_metric, publish_event, task

        @task
        def announce():
            answer = publish_event("data.ready", {"rows": 5, "region": "eu"})
            emit_metric("rows.announced", 5, tags={"pipeline": "announce", "owner": "data_team"})
            return {"runs": answer["run_ids"]}

        @dag
        def announce_pipeline():
            announce()
    ''',
    "on_event.py": '''
        from baton import EventTrigger, flow, task

        @task
        def consume(rows, name):
            return {"rows": rows, "event": name}

        @flow(triggers=[EventTrigger("data.ready", filter={"region": ["eu"]})])
        def on_event(event):
            consume(event["rows"], event.name)
    ''',
    "orders.py": '''
        from baton import DataSLAViolation, check_data_freshness, dag, task

        @task(produces=["orders"])
        def load_orders():
            return {"record_count": 3}

        @task
        def read_orders():
            age = check_data_freshness("orders", max_staleness="1h")
            return {"age_seconds": age.total_seconds()}

        @dag
        def produce_orders():
            load_orders()

        @dag
        def consume_orders():
            read_orders()
    ''',
    "raises.py": '''
        from baton import dag, task

        @task
        def prepare():
            return [1, 2, 3]

        @task
        def divide(rows):
            print("dividing", rows)
            return sum(rows) / (len(rows) - 3)

        @dag
        def raises():
            divide(prepare())
    ''',
    "literal.py": '''
        from baton import dag, task

        @task
        def echo(text, who):
            return {"text": text, "who": who}

        @dag(params={"who": "world"})
        def literal(who):
            echo("h\u00e9llo\u2028w\u00f6rld \U0001F600 {{ x }} $(id) `id` 'q'", who)
    ''',
    "broken.py": '''
        from baton import dag, task

        @task
        def a():
            pass

        THRESHOLD = float("high")

        @dag
        def broken():
            a()
    ''',
    "catalog.yaml": '''
        datasets:
          orders:
            owner: data_team
            freshness: 1h
    ''',
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("python-pipelines")
    folder = root / "pipelines"
    folder.mkdir()
    for name, text in PIPELINES.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"))
    started = start_baton(folder, root=root / "state", timeout=60)
    yield started
    started.stop()


def trigger(server, pipeline, params=None):
    result = server.post("/api/v1/runs", {"pipeline": pipeline, "params": params or {}})
    assert result.status in (200, 201), result
    return result.json()["id"]


def run_of(server, run_id, timeout=60):
    server.wait_for_run(run_id, timeout=timeout)
    return server.get(f"/api/v1/runs/{run_id}").json()


def task_of(run, name):
    return next(task for task in run["tasks"] if task["task"] == name)


def log_of(server, run_id, task, attempt=None):
    query = "format=text" + (f"&attempt={attempt}" if attempt else "")
    return server.get(f"/api/v1/runs/{run_id}/tasks/{task}/logs?{query}").text


def test_the_good_files_load_next_to_a_broken_one(server):
    names = {item["name"] for item in server.get("/api/v1/pipelines").json()["items"]}
    assert {"flow_data", "flaky", "announce", "on_event", "produce_orders", "consume_orders",
            "raises", "literal"} <= names
    assert "broken" not in names
    log = server.log()
    assert "broken.py:7:1: error: ValueError: could not convert string to float: 'high'" in log


def test_validate_reports_the_broken_file_with_its_line(server):
    done = subprocess.run([BINARY, "validate", server.pipelines_dir, "--json"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done
    report = json.loads(done.stdout)
    assert report["errors"] == 1
    [issue] = report["issues"]
    assert issue["file"].endswith("broken.py") and issue["line"] == 7
    assert issue["message"] == "ValueError: could not convert string to float: 'high'"
    assert "flow_data" in report["pipelines"]


def test_results_pass_between_tasks(server):
    run = run_of(server, trigger(server, "flow_data", {"scale": 2}))
    assert run["state"] == "success", run
    assert task_of(run, "extract")["output"] == {"source": "crm", "rows": [1, 2, 3]}
    assert task_of(run, "extract_2")["output"] == {"source": "shop", "rows": [1, 2, 3]}
    assert task_of(run, "total")["output"] == {"value": 24}
    assert task_of(run, "report")["output"] == {"report": "total=24"}
    assert "total: 24" in log_of(server, run["id"], "report")
    detail = server.get("/api/v1/pipelines/flow_data").json()
    pipeline = detail["pipeline"]
    assert pipeline["owner"] == "data_team"
    edges = {(edge["from"], edge["to"]) for edge in detail["graph"]["edges"]}
    assert edges == {("extract", "total"), ("extract_2", "total"), ("total", "report")}
    assert pipeline["file"].endswith("flow_data.py")


def test_literals_and_params_arrive_exactly_as_written(server):
    """Text goes from the pipeline file through Baton's spec and the task's environment
    unchanged: template braces stay text, and nothing passes through a shell."""
    hostile = "x; rm -rf ~ $(id) `id` {{ params.who }}"
    run = run_of(server, trigger(server, "literal", {"who": hostile}))
    assert run["state"] == "success", run
    assert task_of(run, "echo")["output"] == {
        "text": "h\u00e9llo\u2028w\u00f6rld \U0001F600 {{ x }} $(id) `id` 'q'", "who": hostile}


def test_a_failing_attempt_is_retried(server):
    run = run_of(server, trigger(server, "flaky"))
    assert run["state"] == "success", run
    task = task_of(run, "sometimes")
    assert task["attempts"] == 2
    assert task["output"] == {"attempt": 2}
    first = log_of(server, run["id"], "sometimes", attempt=1)
    assert "ConnectionError: source unavailable on attempt 1" in first


def test_a_task_that_raises_fails_with_its_reason_and_traceback(server):
    run = run_of(server, trigger(server, "raises"))
    assert run["state"] == "failed", run
    task = task_of(run, "divide")
    assert task["state"] == "failed"
    assert task["reason"] == "exited with code 1: ZeroDivisionError: division by zero (at raises.py:10 in divide)"
    log = log_of(server, run["id"], "divide")
    assert "Traceback (most recent call last)" in log
    assert "return sum(rows) / (len(rows) - 3)" in log
    assert "dividing [1, 2, 3]" in log


def test_an_event_published_by_a_task_starts_the_triggered_flow(server):
    run = run_of(server, trigger(server, "announce"))
    assert run["state"] == "success", run
    [started] = task_of(run, "announce")["output"]["runs"]
    triggered = run_of(server, started)
    assert triggered["pipeline"] == "on_event" and triggered["trigger"] == "event"
    assert triggered["state"] == "success", triggered
    assert task_of(triggered, "consume")["output"] == {"rows": 5, "event": "data.ready"}

    # The event carries the publishing task as its source and an id tied to the run.
    events = server.get("/api/v1/events?name=data.ready").json()["items"]
    assert events[0]["source"] == "announce.announce"
    assert events[0]["id"] == f"run-{run['id']}-announce-data.ready"

    series = server.get("/api/v1/metrics?name=rows.announced").json()["items"]
    assert series and series[0]["tags"] == {"pipeline": "announce", "owner": "data_team"}


def test_freshness_checks_against_the_catalog(server):
    never = run_of(server, trigger(server, "consume_orders"))
    assert never["state"] == "failed"
    assert task_of(never, "read_orders")["reason"] == (
        "exited with code 1: DataSLAViolation: dataset orders has never been updated (owner data_team) "
        "(at orders.py:9 in read_orders)")

    produced = run_of(server, trigger(server, "produce_orders"))
    assert produced["state"] == "success", produced
    dataset = server.get("/api/v1/datasets/orders").json()["dataset"]
    assert dataset["last_update"]["metadata"] == {"record_count": 3}

    fresh = run_of(server, trigger(server, "consume_orders"))
    assert fresh["state"] == "success", fresh
    assert 0 <= task_of(fresh, "read_orders")["output"]["age_seconds"] < 60


def test_editing_a_file_reloads_it(server):
    path = pathlib.Path(server.pipelines_dir) / "flaky.py"
    original = path.read_text()
    try:
        path.write_text(original.replace("@dag\n", '@dag(owner="reliability")\n'))
        deadline = time.monotonic() + 30
        while server.get("/api/v1/pipelines/flaky").json()["pipeline"].get("owner") != "reliability":
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
    finally:
        path.write_text(original)


def test_the_sdk_installs_with_pip(tmp_path):
    """A user who pip-installs the SDK gets a working `baton` package, without the repository
    on PYTHONPATH."""
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    # A copy: an in-tree build would leave build/ and *.egg-info in the repository.
    source = tmp_path / "sdk"
    shutil.copytree(REPO / "sdk" / "python", source, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    done = subprocess.run([python, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
                           str(source)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and "setuptools" in (done.stdout + done.stderr):
        pytest.skip("no setuptools for the build backend on this machine")
    assert done.returncode == 0, done.stdout + done.stderr
    check = subprocess.run([python, "-c", "import baton, os; print(baton.__version__, os.path.dirname(baton.__file__))"],
                           capture_output=True, text=True, cwd=str(tmp_path), timeout=60)
    assert check.returncode == 0, check.stderr
    version, location = check.stdout.split()
    assert version == "0.1.0"
    assert "site-packages" in location

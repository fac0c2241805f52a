"""`python -m baton.run`: a task's process resolves its arguments from what Baton passes and
writes its return value, or a clear failure reason."""

from helpers import describe, only_spec, run_task, write

PIPELINE = """
    import datetime
    from baton import dag, task

    @task
    def extract():
        return [1, 2, 3]

    @task
    def summarize(rows, region, greeting, event_rows, options):
        return {"count": len(rows), "region": region, "greeting": greeting, "event_rows": event_rows,
                "options": options}

    @task
    def boom(rows):
        raise ValueError(f"bad row {rows[1]}")

    @task
    def not_json():
        return {"when": datetime.datetime(2026, 1, 1)}

    @task
    def too_big():
        return "x" * 70000

    @task
    def check(rows):
        return {"value": len(rows)}

    @dag(params={"region": "eu"})
    def tasks(region, event=None):
        rows = extract()
        summarize(rows, region, f"hello {region}!", event["rows"], {"$baton": "literal", "n": 1})
        boom(rows)
        not_json()
        too_big()
        check(rows)
"""


def spec_of(tmp_path):
    path = write(tmp_path, "tasks.py", PIPELINE)
    return path, only_spec(describe(path))["tasks"]


def test_arguments_come_from_upstream_outputs_params_and_the_event(tmp_path):
    path, tasks = spec_of(tmp_path)
    code, output, error, log = run_task(path, tasks["extract"], tmp=tmp_path)
    assert code == 0, log
    assert output == {"value": [1, 2, 3]}  # not a dict: stored under "value"

    code, output, error, log = run_task(
        path, tasks["summarize"], inputs={"extract": output}, params={"region": "us"},
        event={"id": "e1", "name": "data.ready", "payload": {"rows": 400}}, tmp=tmp_path)
    assert code == 0, log
    assert output == {"count": 3, "region": "us", "greeting": "hello us!", "event_rows": 400,
                      "options": {"$baton": "literal", "n": 1}}


def test_a_dict_shaped_like_the_wrapper_survives_the_round_trip(tmp_path):
    path, tasks = spec_of(tmp_path)
    code, output, _, log = run_task(path, tasks["check"], inputs={"extract": {"value": [1, 2]}}, tmp=tmp_path)
    assert code == 0, log
    assert output == {"value": {"value": 2}}


def test_an_exception_fails_the_task_with_its_traceback_and_a_reason(tmp_path):
    path, tasks = spec_of(tmp_path)
    code, output, error, log = run_task(path, tasks["boom"], inputs={"extract": {"value": [1, 2, 3]}}, tmp=tmp_path)
    assert code == 1
    assert output is None
    assert error == "ValueError: bad row 2 (at tasks.py:15 in boom)"
    assert "Traceback (most recent call last)" in log
    assert 'raise ValueError(f"bad row {rows[1]}")' in log
    assert "baton/run.py" not in log  # the SDK's own frames are left out


def test_results_that_are_not_json_or_too_big_name_the_task(tmp_path):
    path, tasks = spec_of(tmp_path)
    code, output, error, _ = run_task(path, tasks["not_json"], tmp=tmp_path)
    assert code == 1 and output is None
    assert error.startswith("task 'not_json' returned a dict that is not JSON")
    assert "datetime" in error and ".isoformat()" in error

    code, output, error, _ = run_task(path, tasks["too_big"], tmp=tmp_path)
    assert code == 1 and output is None
    assert error.startswith("task 'too_big' returned 70013 bytes of JSON, over Baton's 65536-byte limit")


def test_missing_inputs_are_explained(tmp_path):
    path, tasks = spec_of(tmp_path)
    code, _, error, _ = run_task(path, tasks["boom"], tmp=tmp_path)
    assert code == 1
    assert error.startswith("TaskInputError: task 'boom' needs the result of task 'extract', which is not in BATON_INPUTS")

    code, _, error, _ = run_task(path, tasks["summarize"], inputs={"extract": {"value": []}}, tmp=tmp_path)
    assert code == 1
    assert error.startswith("TaskInputError: task 'summarize' reads the param 'region', which the run does not have")

    code, _, error, _ = run_task(path, tasks["summarize"], inputs={"extract": {"value": []}}, params={"region": "eu"},
                                 tmp=tmp_path)
    assert code == 1
    assert "this run was not started by an event" in error

    code, _, error, _ = run_task(path, tasks["summarize"], inputs={"extract": {"value": []}}, params={"region": "eu"},
                                 event={"payload": {"count": 1}}, tmp=tmp_path)
    assert code == 1
    assert "reads the event's payload['rows'], but the event's payload has no key 'rows' (its keys: count)" in error


def test_calling_a_task_outside_a_pipeline_runs_it(tmp_path):
    import importlib.util

    path = write(tmp_path, "direct.py", PIPELINE)
    spec = importlib.util.spec_from_file_location("direct_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.extract() == [1, 2, 3]
    assert module.check([1]) == {"value": 1}

"""What Baton gets from `python -m baton.describe`: the pipeline spec, its source lines, and
problems located in the Python file."""

import json

from helpers import call_of, describe, only_spec, write


def test_data_flow_becomes_needs_and_references(tmp_path):
    path = write(tmp_path, "etl.py", """
        from baton import dag, task

        @task(retries=2, retry_delay="5s", timeout=60, queue="etl", pool="warehouse")
        def extract(source):
            return {"rows": 3}

        @task
        def combine(parts, label="all"):
            return sum(part["rows"] for part in parts)

        @dag(schedule="@hourly", owner="data_engineering")
        def etl():
            a = extract("crm")
            b = extract(source="shop")
            combine([a, b["rows"]], label="both")
    """)
    spec = only_spec(describe(path))
    assert spec["name"] == "etl"  # one pipeline in the file: named after the file, like YAML
    assert spec["owner"] == "data_engineering"
    assert spec["schedule"] == "@hourly"
    tasks = spec["tasks"]
    assert list(tasks) == ["extract", "extract_2", "combine"]
    assert tasks["extract"]["retries"] == 2 and tasks["extract"]["retry_delay"] == "5s"
    assert tasks["extract"]["timeout"] == "60s"
    assert tasks["extract"]["queue"] == "etl" and tasks["extract"]["pool"] == "warehouse"
    assert "needs" not in tasks["extract"]
    assert tasks["combine"]["needs"] == ["extract", "extract_2"]
    call = call_of(tasks["combine"])
    assert call["args"] == [[{"$baton": "output", "task": "extract", "path": []},
                             {"$baton": "output", "task": "extract_2", "path": ["rows"]}]]
    assert call["kwargs"] == {"label": "both"}
    assert call_of(tasks["extract_2"])["kwargs"] == {"source": "shop"}
    run = tasks["extract"]["run"]
    assert run[1:4] == ["-m", "baton.run", "etl.py"] and run[4] == "_baton_pipeline_etl:extract"


def test_a_step_whose_result_is_unused_orders_the_calls_after_it(tmp_path):
    path = write(tmp_path, "steps.py", """
        from baton import dag, task

        @task
        def one(): pass

        @task
        def two(): pass

        @task
        def three(): pass

        @task
        def produce(): return 1

        @task
        def consume(x, y): pass

        @dag
        def steps():
            a = produce()
            one()             # nothing uses its result: a step for its side effects
            b = produce()     # runs after one
            two()             # waits for one (b is data for consume, not a step)
            three()
            consume(a, b)
    """)
    tasks = only_spec(describe(path))["tasks"]
    assert "needs" not in tasks["produce"]
    assert tasks["one"].get("needs") is None
    assert tasks["produce_2"]["needs"] == ["one"]
    assert tasks["two"]["needs"] == ["one"]
    assert tasks["three"]["needs"] == ["two"]   # one is already upstream of two
    assert tasks["consume"]["needs"] == ["produce", "produce_2", "three"]


def test_if_on_a_result_becomes_when_conditions(tmp_path):
    path = write(tmp_path, "deploy.py", """
        from baton import dag, task

        @task
        def check(): return True

        @task
        def score(): return {"accuracy": 0.9}

        @task
        def promote(): pass

        @task
        def rollback(): pass

        @task
        def notify(): pass

        @task
        def report(): pass

        @dag(params={"force": False})
        def deploy(force):
            if check():
                promote()
            else:
                rollback()
            if score()["accuracy"] >= 0.8 and not force:
                report()
            notify()
    """)
    tasks = only_spec(describe(path))["tasks"]
    assert tasks["promote"]["when"] == "tasks.check.output.value"
    assert tasks["rollback"]["when"] == "not tasks.check.output.value"
    assert "check" in tasks["promote"]["needs"]
    assert tasks["report"]["when"] == "(tasks.score.output.value.accuracy >= 0.8) and not params.force"
    assert "when" not in tasks["notify"]
    # notify waits for the branches but must run whichever was skipped
    assert tasks["notify"]["trigger_rule"] == "none_failed"
    # a tested result is always stored as {"value": ...} so the condition's path is fixed
    assert call_of(tasks["check"])["wrap"] is True
    assert call_of(tasks["score"])["wrap"] is True
    assert call_of(tasks["promote"])["wrap"] is False


def test_params_event_and_formatted_strings(tmp_path):
    path = write(tmp_path, "triggered.py", """
        from baton import EventTrigger, flow, task

        @task
        def train(rows, label, region):
            return rows

        @flow(triggers=[EventTrigger("data.customers.updated", filter={"region": ["eu"]})],
              params={"metric": {"default": "f1", "type": "string", "description": "selection metric"}})
        def triggered(event, metric, limit=10):
            train(event["record_count"], f"{metric}-{limit:>4}", event.name)
    """)
    spec = only_spec(describe(path))
    assert spec["schedule"] == "none"
    assert spec["triggers"] == [{"event": "data.customers.updated", "filter": {"region": ["eu"]}}]
    assert spec["params"] == {"metric": {"default": "f1", "type": "string", "description": "selection metric"},
                              "limit": 10}
    call = call_of(spec["tasks"]["train"])
    assert call["args"][0] == {"$baton": "event", "field": "payload", "path": ["record_count"]}
    assert call["args"][1] == {"$baton": "format", "parts": [
        {"value": {"$baton": "param", "name": "metric", "path": []}, "spec": ""}, "-",
        {"value": {"$baton": "param", "name": "limit", "path": []}, "spec": ">4"}]}
    assert call["args"][2] == {"$baton": "event", "field": "name", "path": []}


def test_spec_lines_point_at_the_python_source(tmp_path):
    path = write(tmp_path, "lines.py", """
        from baton import dag, task

        @task(retries=1)
        def a(): return 1

        @task
        def b(x): pass

        @dag(schedule="@daily")
        def lines():
            x = a()
            b(x)
    """)
    answer = describe(path)
    pipeline = answer["pipelines"][0]
    text_lines = pipeline["spec"].splitlines()
    assert len(text_lines) == len(pipeline["lines"])
    by_text = dict(zip(text_lines, pipeline["lines"]))
    schedule = next(line for line in text_lines if '"schedule"' in line)
    assert by_text[schedule] == 9            # the @dag line
    retries = next(line for line in text_lines if '"retries"' in line)
    assert by_text[retries] == 3             # the @task(retries=1) line
    needs = next(line for line in text_lines if '"needs"' in line)
    assert by_text[needs] == 12              # the call b(x)


def test_errors_are_located_in_the_file(tmp_path):
    syntax = write(tmp_path, "syntax.py", """
        from baton import dag, task

        @dag
        def broken(:
            pass
    """)
    answer = describe(syntax)
    assert answer["pipelines"] == []
    [issue] = answer["issues"]
    assert issue["severity"] == "error" and issue["line"] == 4
    assert issue["message"].startswith("SyntaxError")

    crash = write(tmp_path, "crash.py", """
        from baton import dag, task

        @task
        def a(): pass

        LIMIT = int("ten")

        @dag
        def crash():
            a()
    """)
    [issue] = describe(crash)["issues"]
    assert issue["line"] == 6
    assert issue["message"] == "ValueError: invalid literal for int() with base 10: 'ten'"

    in_function = write(tmp_path, "inside.py", """
        from baton import dag, task

        @task
        def a(): return [1, 2]

        @dag
        def inside():
            for item in a():
                pass
    """)
    [issue] = describe(in_function)["issues"]
    assert issue["line"] == 8
    assert "the result of task 'a' is looped over" in issue["message"]
    assert "fix" in issue

    bad_argument = write(tmp_path, "badarg.py", """
        import datetime
        from baton import dag, task

        @task
        def a(when): pass

        @dag
        def badarg():
            a(datetime.datetime(2026, 1, 1))
    """)
    [issue] = describe(bad_argument)["issues"]
    assert issue["line"] == 9
    assert "argument 1 of task 'a' is a datetime" in issue["message"]
    assert ".isoformat()" in issue["fix"]


def test_a_file_without_pipelines_is_a_warning_and_several_pipelines_use_function_names(tmp_path):
    helper = write(tmp_path, "helper.py", """
        from baton import task

        @task
        def shared(): pass
    """)
    answer = describe(helper)
    assert answer["pipelines"] == []
    assert answer["issues"][0]["severity"] == "warning"

    several = write(tmp_path, "several.py", """
        from baton import dag, task

        @task
        def a(): pass

        @dag(schedule="@daily")
        def first():
            a()

        @dag(name="custom-name")
        def second():
            a()
    """)
    answer = describe(several)
    assert answer["issues"] == []
    assert [pipeline["name"] for pipeline in answer["pipelines"]] == ["first", "custom-name"]


def test_templates_in_literals_stay_literal(tmp_path):
    path = write(tmp_path, "literal.py", """
        from baton import dag, task

        @task
        def render(template): return template

        @dag
        def literal():
            render("Hello {{ name }}")
    """)
    spec = only_spec(describe(path))
    env = spec["tasks"]["render"]["env"]["BATON_PYTHON_CALL"]
    # Baton renders task env values as templates; the escape makes it print the braces as written.
    assert '{{ "{{" }}' in env
    assert json.loads(env.replace('{{ "{{" }}', "{{"))["args"] == ["Hello {{ name }}"]

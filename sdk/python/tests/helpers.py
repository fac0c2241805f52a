"""Writing pipeline files and describing them the way Baton does."""

import json
import os
import subprocess
import sys
import textwrap

SDK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(folder, name, source):
    path = os.path.join(str(folder), name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(source).lstrip("\n"))
    return path


def environment(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = SDK
    for key in list(env):
        if key.startswith("BATON_"):
            del env[key]
    env.update(extra)
    return env


def describe(path):
    """Runs `python -m baton.describe FILE --output ...` in a fresh process; returns the answer."""
    output = path + ".answer.json"
    done = subprocess.run([sys.executable, "-m", "baton.describe", path, "--output", output],
                          capture_output=True, text=True, env=environment(), cwd=os.path.dirname(path), timeout=60)
    assert done.returncode == 0, done.stderr
    with open(output, encoding="utf-8") as handle:
        return json.load(handle)


def only_spec(answer):
    assert answer["issues"] == [], answer["issues"]
    assert len(answer["pipelines"]) == 1, answer
    return json.loads(answer["pipelines"][0]["spec"])


def call_of(task_spec):
    return json.loads(task_spec["env"]["BATON_PYTHON_CALL"])


def run_task(path, task_spec, inputs=None, params=None, event=None, tmp=None, extra_env=None):
    """Runs the task's command like a Baton worker: its env, BATON_INPUTS/PARAMS/EVENT, and
    BATON_OUTPUT/BATON_ERROR files. Returns (exit code, output or None, error line, log)."""
    run = task_spec["run"]
    out = os.path.join(str(tmp), "output.json")
    err = os.path.join(str(tmp), "error.txt")
    for leftover in (out, err):
        if os.path.exists(leftover):
            os.unlink(leftover)
    env = environment(BATON_OUTPUT=out, BATON_ERROR=err, BATON_INPUTS=json.dumps(inputs or {}),
                      BATON_PARAMS=json.dumps(params or {}), BATON_TASK="t", BATON_RUN_ID="7")
    env.update(task_spec.get("env", {}))
    if event is not None:
        env["BATON_EVENT"] = json.dumps(event)
    env.update(extra_env or {})
    done = subprocess.run(run, capture_output=True, text=True, env=env, cwd=os.path.dirname(path), timeout=60)
    output = None
    if os.path.exists(out):
        with open(out, encoding="utf-8") as handle:
            output = json.load(handle)
    error = open(err, encoding="utf-8").read().strip() if os.path.exists(err) else None
    return done.returncode, output, error, done.stdout + done.stderr

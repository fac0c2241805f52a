"""What a running task knows about its run, from the environment Baton gives every task."""

import json
import os

_running_task = None


def mark_running(task):
    global _running_task
    _running_task = task


def running_task():
    return _running_task


class TaskContext:
    """The run a task belongs to. Outside Baton every field is None (params and inputs empty)."""

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.run_id = _int(env.get("BATON_RUN_ID"))
        self.pipeline = env.get("BATON_PIPELINE")
        self.task = env.get("BATON_TASK")
        self.attempt = _int(env.get("BATON_ATTEMPT"))
        self.owner = env.get("BATON_OWNER")
        self.logical_date = env.get("BATON_LOGICAL_DATE")
        self.data_interval_start = env.get("BATON_DATA_INTERVAL_START")
        self.data_interval_end = env.get("BATON_DATA_INTERVAL_END")
        self.params = _json(env.get("BATON_PARAMS"), {})
        self.inputs = _json(env.get("BATON_INPUTS"), {})
        self.event = _json(env.get("BATON_EVENT"), None)
        self.server = env.get("BATON_SERVER") or env.get("BATON_URL")

    @property
    def ds(self):
        """The logical date as YYYY-MM-DD, like `{{ ds }}` in YAML."""
        return self.logical_date[:10] if self.logical_date else None

    def __repr__(self):
        return (f"TaskContext(pipeline={self.pipeline!r}, run_id={self.run_id!r}, task={self.task!r}, "
                f"attempt={self.attempt!r}, logical_date={self.logical_date!r})")


def get_context():
    """The current task's run: ids, attempt, logical date and data interval, params, inputs
    and the event that started the run."""
    return TaskContext()


def _int(text):
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _json(text, default):
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default

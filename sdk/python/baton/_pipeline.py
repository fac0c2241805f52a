"""`@dag`/`@flow` and `@task`: Python functions as Baton pipelines and tasks.

A pipeline becomes the same spec a YAML file describes (name, owner, schedule, params,
triggers, tasks with needs, retries, timeouts, `when:` conditions), which Baton validates with
the rules YAML files follow. Each task runs its function in a fresh Python process
(`python -m baton.run`), so a task has only its arguments: what upstream tasks returned, params
and literals, all as JSON.
"""

import datetime
import functools
import inspect
import json
import math
import os
import sys

from . import _trace
from ._errors import PipelineDefinitionError
from ._values import EventValue, Param

_TRIGGER_RULES = ("all_success", "all_done", "one_failed", "all_failed", "none_failed", "one_success")

# Pipelines in the order their decorators ran; describe keeps those defined in the file it reads.
_defined = []


class EventTrigger:
    """Start a run whenever an event with this name is published, optionally only when payload
    fields have one of the given values: `EventTrigger("data.customers.updated",
    filter={"region": ["eu", "us"]})`."""

    def __init__(self, event, filter=None):
        if not isinstance(event, str) or not event:
            raise TypeError(f"EventTrigger needs an event name such as 'data.customers.updated', got {event!r}")
        if filter is not None and not isinstance(filter, dict):
            raise TypeError(f"EventTrigger filter must map payload fields to values, got {filter!r}")
        self.event = event
        self.filter = dict(filter or {})

    def to_spec(self):
        spec = {"event": self.event}
        if self.filter:
            spec["filter"] = self.filter
        return spec

    def __repr__(self):
        return f"EventTrigger({self.event!r}" + (f", filter={self.filter!r})" if self.filter else ")")


def duration_text(value, what):
    """A duration as Baton writes it: '90s', '500ms', or the text given ('2m', '1h30m')."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a duration such as '30s', 30 or timedelta(seconds=30), got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{what} must be a finite, non-negative number of seconds, got {value!r}")
        if float(value).is_integer():
            return f"{int(value)}s"
        return f"{round(value * 1000)}ms"
    if isinstance(value, str):
        return value
    raise TypeError(f"{what} must be a duration such as '30s', 30 or timedelta(seconds=30), got {value!r}")


class Task:
    """A function that runs as one Baton task. Called inside a pipeline function it records a
    call; called anywhere else (a test, another task) it simply runs."""

    OPTION_KEYS = ("name", "retries", "retry_delay", "retry_backoff", "max_retry_delay", "timeout", "trigger_rule",
                   "produces", "requires", "env", "workdir", "description", "queue", "pool")

    def __init__(self, fn, options, call_options=None):
        if not callable(fn):
            raise TypeError(f"@task decorates a function, got {fn!r}")
        self.fn = fn
        self.task_options = options
        self.call_options = call_options or {}
        self.name = self.call_options.get("name") or options.get("name") or fn.__name__
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        trace = _trace.current_trace()
        if trace is None:
            return self.fn(*args, **kwargs)
        if "<locals>" in self.fn.__qualname__:
            trace.fail(f"task '{self.fn.__qualname__}' is defined inside a function, so its process cannot import it",
                       "define @task functions at the top level of a module")
        options = dict(self.task_options)
        options.update(self.call_options)
        return trace.record(self, options, args, kwargs)

    def options(self, **overrides):
        """The same task with some options changed for one call, e.g.
        `train.options(name="train_eu", retries=3)(rows)`."""
        unknown = sorted(set(overrides) - set(self.OPTION_KEYS))
        if unknown:
            raise TypeError(f"unknown task option {', '.join(unknown)}; options are {', '.join(self.OPTION_KEYS)}")
        merged = dict(self.call_options)
        merged.update(overrides)
        return Task(self.fn, self.task_options, merged)

    def target(self):
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def definition_line(self):
        code = getattr(self.fn, "__code__", None)
        return code.co_firstlineno if code else None

    def __repr__(self):
        return f"<baton task {self.name}>"


def task(fn=None, *, name=None, retries=None, retry_delay=None, retry_backoff=None, max_retry_delay=None,
         timeout=None, trigger_rule=None, produces=None, requires=None, env=None, workdir=None, description=None,
         queue=None, pool=None):
    """Makes a function a Baton task. Use bare (`@task`) or with options (`@task(retries=2)`).

    retries, retry_delay ('10s', seconds or a timedelta), retry_backoff, max_retry_delay,
    timeout, trigger_rule, produces (dataset names this task updates when it succeeds; its
    returned dict becomes the update's metadata), requires (data contracts checked before it
    starts: names or dicts like {"dataset": "clean_customers", "max_staleness": "2h"}), env,
    workdir, description, queue (which workers may run it) and pool (a shared concurrency limit)
    mean what they mean in a YAML task.
    """
    options = {}
    for key, value in (("name", name), ("retries", retries), ("retry_backoff", retry_backoff),
                       ("trigger_rule", trigger_rule), ("produces", produces), ("requires", requires),
                       ("env", env), ("workdir", workdir), ("description", description), ("queue", queue),
                       ("pool", pool)):
        if value is not None:
            options[key] = value
    for key, value in (("retry_delay", retry_delay), ("max_retry_delay", max_retry_delay), ("timeout", timeout)):
        if value is not None:
            options[key] = duration_text(value, key)
    if isinstance(options.get("produces"), str):
        options["produces"] = [options["produces"]]
    if isinstance(options.get("requires"), (str, dict)):
        options["requires"] = [options["requires"]]
    if fn is not None:
        return Task(fn, options)
    return lambda function: Task(function, options)


class Pipeline:
    """A function whose task calls make a Baton pipeline (`@dag` or `@flow`)."""

    def __init__(self, fn, options):
        if not callable(fn):
            raise TypeError(f"@dag and @flow decorate a function, got {fn!r}")
        self.fn = fn
        self.options = options
        functools.update_wrapper(self, fn)
        _defined.append(self)

    def location(self):
        code = self.fn.__code__
        return os.path.abspath(code.co_filename), code.co_firstlineno

    def __call__(self, *args, **kwargs):
        if _trace.current_trace() is not None:
            _trace.current_trace().fail(
                f"pipeline '{self.fn.__name__}' is called inside another pipeline",
                "call tasks in a pipeline; to start another pipeline, publish an event it is triggered by")
        if args or kwargs:
            raise TypeError(
                f"pipeline '{self.fn.__name__}' gets its params from the run; call it without arguments to see "
                "the pipeline Baton would build")
        return self.describe()

    def describe(self, name=None, source_file=None):
        """The pipeline spec as a dict (what Baton validates and stores)."""
        return build_spec(self, name or self.options.get("name") or self.fn.__name__, source_file)[0]

    def __repr__(self):
        return f"<baton pipeline {self.options.get('name') or self.fn.__name__}>"


def _pipeline_decorator(fn, options):
    if fn is not None:
        return Pipeline(fn, options)
    return lambda function: Pipeline(function, options)


def dag(fn=None, *, name=None, schedule=None, owner=None, description=None, params=None, triggers=None,
        retries=None, retry_delay=None, timeout=None, timezone=None, start_date=None, catchup=None,
        max_active_runs=None):
    """Makes a function a Baton pipeline (Airflow's name for it). See `flow` for the options."""
    return _pipeline_decorator(fn, _pipeline_options(locals()))


def flow(fn=None, *, name=None, schedule=None, owner=None, description=None, params=None, triggers=None,
         retries=None, retry_delay=None, timeout=None, timezone=None, start_date=None, catchup=None,
         max_active_runs=None):
    """Makes a function a Baton pipeline (Prefect's name for it).

    schedule: cron text or @hourly/@daily/...; None means runs start only by trigger or event.
    owner: the owning team. params: {name: default} or {name: {"default", "type", "description",
    "enum"}}; the function's parameters with these names receive them. triggers: a list of
    EventTrigger (or event names); a parameter named `event` receives the event's payload.
    retries, retry_delay and timeout: defaults for every task. timezone, start_date, catchup,
    max_active_runs: as in a YAML pipeline. name: default is the file's name when the file
    defines one pipeline, else the function's name.
    """
    return _pipeline_decorator(fn, _pipeline_options(locals()))


def _pipeline_options(arguments):
    options = {key: value for key, value in arguments.items() if key != "fn" and value is not None}
    for key in ("retry_delay", "timeout"):
        if key in options:
            options[key] = duration_text(options[key], key)
    return options


# ---------------------------------------------------------------------------------------------
# Building the spec
# ---------------------------------------------------------------------------------------------

def _template_literal(text):
    """Text for a templated field (argv, env) that must stay exactly this text: Baton renders
    `{{ "{{" }}` as a literal `{{`."""
    return text.replace("{{", '{{ "{{" }}')


def _json_value(value, what, location):
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise PipelineDefinitionError(f"{what} is not JSON ({error})",
                                      fix="use strings, numbers, booleans, None, lists and dicts",
                                      filename=location[0], lineno=location[1]) from None


def _params(pipeline, location):
    """Declared params plus the function's parameters with defaults."""
    declared = dict(pipeline.options.get("params") or {})
    if not isinstance(pipeline.options.get("params") or {}, dict):
        raise PipelineDefinitionError("params must be a dict of name to default value",
                                      fix='write params={"region": "eu"}', filename=location[0], lineno=location[1])
    signature = inspect.signature(pipeline.fn)
    arguments = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise PipelineDefinitionError(
                f"pipeline '{pipeline.fn.__name__}' has *{parameter.name}; Baton passes params by name",
                fix="name each param as a parameter with a default", filename=location[0], lineno=location[1])
        if parameter.name == "event":
            arguments.append(parameter.name)
            continue
        if parameter.name not in declared:
            if parameter.default is parameter.empty:
                raise PipelineDefinitionError(
                    f"parameter '{parameter.name}' of pipeline '{pipeline.fn.__name__}' has no default and is "
                    "not in params=", fix=f"give it a default ({parameter.name}=...) or declare it in params=",
                    filename=location[0], lineno=location[1])
            declared[parameter.name] = parameter.default
        arguments.append(parameter.name)
    spec = {}
    for name, value in declared.items():
        spec[name] = _json_value(value, f"the default of param '{name}'", location)
    return spec, arguments


def _arguments_factory(arguments):
    def make(trace):
        return {name: EventValue(trace) if name == "event" else Param(trace, name) for name in arguments}

    return make


def build_spec(pipeline, name, source_file=None):
    """(spec dict, locations) where locations maps key paths in the spec to source lines."""
    filename, line = pipeline.location()
    source_file = os.path.abspath(source_file or filename)
    options = pipeline.options
    locations = {(): line}
    spec = {"name": name}
    if "owner" in options:
        spec["owner"] = options["owner"]
    description = options.get("description") or inspect.getdoc(pipeline.fn)
    if description:
        spec["description"] = description
    schedule = options.get("schedule")
    spec["schedule"] = schedule if schedule is not None else "none"
    for key in ("timezone", "catchup", "max_active_runs"):
        if key in options:
            spec[key] = options[key]
    if "start_date" in options:
        start = options["start_date"]
        spec["start_date"] = start.isoformat() if isinstance(start, (datetime.date, datetime.datetime)) else start
    params, arguments = _params(pipeline, (filename, line))
    if params:
        spec["params"] = params
    triggers = options.get("triggers")
    if triggers:
        if isinstance(triggers, (str, EventTrigger)):
            triggers = [triggers]
        spec["triggers"] = [item.to_spec() if isinstance(item, EventTrigger) else item for item in triggers]
        spec["triggers"] = _json_value(spec["triggers"], "triggers", (filename, line))

    recording = _trace.record(pipeline, _arguments_factory(arguments))
    python_path = _task_python_path()
    tasks = {}
    skippable = {}
    for task_name, call, needs, when, has_when, tested in recording.tasks():
        task_options = dict(call.options)
        entry = {"run": [_template_literal(part) for part in
                         (_interpreter(), "-m", "baton.run", _file_argument(source_file, task_options.get("workdir")),
                          call.task.target())]}
        call_json = json.dumps({"task": task_name, "args": call.args, "kwargs": call.kwargs, "wrap": tested},
                               sort_keys=True, ensure_ascii=False)
        env = {"BATON_PYTHON_CALL": _template_literal(call_json)}
        if python_path:
            env["PYTHONPATH"] = _template_literal(python_path)
        for key, value in (task_options.get("env") or {}).items():
            env[str(key)] = value if isinstance(value, str) else json.dumps(value)
        entry["env"] = env
        if "workdir" in task_options:
            entry["workdir"] = task_options["workdir"]
        if needs:
            entry["needs"] = list(needs)
        definition = call.task.definition_line()
        for key in ("retries", "retry_delay", "retry_backoff", "max_retry_delay", "timeout"):
            if key in task_options:
                entry[key] = task_options[key]
                if key not in call.task.call_options and definition:
                    locations[("tasks", task_name, key)] = definition
            elif key in options:
                entry[key] = options[key]
        rule = task_options.get("trigger_rule")
        if rule is None and any(skippable.get(need) for need in needs):
            # It waits for a step that may be skipped (an `if` branch) and must still run
            # then; only its own condition decides. Its data and condition inputs cannot be
            # skipped while that condition holds, so nothing else changes.
            rule = "none_failed"
        if rule is not None:
            entry["trigger_rule"] = rule
        skippable[task_name] = has_when or (
            rule in (None, "all_success") and any(skippable.get(need) for need in needs))
        if when:
            entry["when"] = when
        for key in ("produces", "requires", "description", "queue", "pool"):
            if key in task_options:
                entry[key] = task_options[key]
                if key not in call.task.call_options and definition:
                    locations[("tasks", task_name, key)] = definition
        if call.lineno:
            locations[("tasks", task_name)] = call.lineno
        tasks[task_name] = entry
    spec["tasks"] = tasks
    return spec, locations


def _interpreter():
    """The interpreter tasks run with: the one Baton reads files with, as Baton names it
    (`python3` is then found on the worker's PATH), else this one."""
    return os.environ.get("BATON_PYTHON_COMMAND") or sys.executable


def _file_argument(source_file, workdir):
    """The pipeline file as the task process finds it from its working directory: relative,
    so the command reads well and still works where the pipelines folder lives elsewhere."""
    folder = os.path.dirname(source_file)
    if workdir is None:
        return os.path.basename(source_file)
    if "{{" in workdir:
        return source_file
    directory = workdir if os.path.isabs(workdir) else os.path.normpath(os.path.join(folder, workdir))
    return os.path.relpath(source_file, directory)


def _task_python_path():
    """PYTHONPATH for the task processes: what this process had, when the SDK came from it
    (Baton puts its bundled SDK there); empty when the SDK is installed."""
    value = os.environ.get("PYTHONPATH", "")
    sdk_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    entries = [os.path.abspath(entry) for entry in value.split(os.pathsep) if entry]
    return value if sdk_root in entries else ""

"""`python -m baton.run FILE MODULE:FUNCTION`: runs one task of a Python pipeline.

Baton starts this as the task's process. The call (arguments with references to upstream
results, params and the event) is in `BATON_PYTHON_CALL`; the values come from Baton's usual
task environment: `BATON_INPUTS` (direct upstream outputs), `BATON_PARAMS` and `BATON_EVENT`.
The function's return value is written as JSON to `BATON_OUTPUT`. An exception prints its
traceback to the task's log and its last line to `BATON_ERROR`, which Baton shows as the
reason the task failed.
"""

import importlib
import json
import os
import sys
import traceback

from . import _context, describe
from ._errors import BatonError

MAX_OUTPUT_BYTES = 64 * 1024


class TaskInputError(BatonError):
    """An argument could not be resolved from what Baton passed to the task."""


def _load_json_env(name, default):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError as error:
        raise TaskInputError(f"{name} is not valid JSON ({error})",
                             fix="run the task through Baton, which sets it") from None


def unwrap(output):
    """A task's output as the function returned it: non-dict results (and dicts tested in a
    condition) are stored as {"value": ...}."""
    if isinstance(output, dict) and set(output) == {"value"}:
        return output["value"]
    return output


def wrap(value, always):
    if always or not isinstance(value, dict) or set(value) == {"value"}:
        return {"value": value}
    return value


class Resolver:
    def __init__(self, task):
        self.task = task
        self._inputs = None
        self._params = None
        self._event = None

    @property
    def inputs(self):
        if self._inputs is None:
            self._inputs = _load_json_env("BATON_INPUTS", {})
        return self._inputs

    @property
    def params(self):
        if self._params is None:
            self._params = _load_json_env("BATON_PARAMS", {})
        return self._params

    @property
    def event(self):
        if self._event is None:
            self._event = _load_json_env("BATON_EVENT", None)
            if self._event is None:
                raise TaskInputError(
                    f"task '{self.task}' reads the event, but this run was not started by an event (BATON_EVENT "
                    "is not set)", fix="start the pipeline by publishing the event it is triggered by")
        return self._event

    def resolve(self, value):
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        kind = value.get("$baton")
        if kind is None:
            return {key: self.resolve(item) for key, item in value.items()}
        if kind == "dict":
            return {key: self.resolve(item) for key, item in value["value"].items()}
        if kind == "format":
            parts = []
            for part in value["parts"]:
                if isinstance(part, str):
                    parts.append(part)
                else:
                    parts.append(format(self.resolve(part["value"]), part.get("spec", "")))
            return "".join(parts)
        if kind == "output":
            upstream = value["task"]
            if upstream not in self.inputs:
                raise TaskInputError(
                    f"task '{self.task}' needs the result of task '{upstream}', which is not in BATON_INPUTS",
                    fix="run the task through Baton (`baton trigger`), which passes upstream results")
            return self._walk(unwrap(self.inputs[upstream]), value.get("path", []),
                              f"the result of task '{upstream}'")
        if kind == "param":
            name = value["name"]
            if name not in self.params:
                raise TaskInputError(f"task '{self.task}' reads the param '{name}', which the run does not have",
                                     fix=f"declare '{name}' in the pipeline's params")
            return self._walk(self.params[name], value.get("path", []), f"the param '{name}'")
        if kind == "event":
            field = value.get("field", "payload")
            return self._walk(self.event.get(field), value.get("path", []), f"the event's {field}")
        raise TaskInputError(f"unknown reference kind {kind!r} in BATON_PYTHON_CALL",
                             fix="describe and run the pipeline with the same version of the baton SDK")

    def _walk(self, current, path, what):
        shown = what
        for key in path:
            try:
                current = current[key]
            except (KeyError, IndexError, TypeError):
                if isinstance(current, dict):
                    keys = ", ".join(sorted(map(str, current))) or "none"
                    problem = f"has no key {key!r} (its keys: {keys})"
                elif isinstance(current, list):
                    problem = f"has no item {key!r} (it has {len(current)})"
                else:
                    problem = f"is {type(current).__name__} {json.dumps(current)[:80]}, which has no item {key!r}"
                raise TaskInputError(f"task '{self.task}' reads {shown}[{key!r}], but {shown} {problem}") from None
            shown += f"[{key!r}]"
        return current


def _find(module, qualname):
    target = module
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def load_target(path, target):
    """The task's function: the pipeline file is imported like describe imported it, so module
    level set-up runs the same way; functions from other modules are imported by name."""
    module = describe.load_file(path)
    module_name, _, qualname = target.partition(":")
    if module_name != module.__name__:
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
    function = _find(module, qualname)
    return getattr(function, "fn", function)  # the undecorated function of a @task


def _print_traceback(error):
    """The traceback from the user's code inward; the SDK's own frames above it say nothing."""
    tb = error.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(describe._SDK_DIR + os.sep):
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb or error.__traceback__, file=sys.stderr)
    sys.stderr.flush()


def _write_error(text):
    path = os.environ.get("BATON_ERROR")
    if not path:
        return
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text[:1000] + "\n")
    except OSError:
        pass


def _reason(error, path):
    """One line for Baton's failure reason: the exception and where it was raised."""
    frames = traceback.extract_tb(error.__traceback__)
    user = [frame for frame in frames if not os.path.abspath(frame.filename).startswith(describe._SDK_DIR + os.sep)]
    where = ""
    if user:
        frame = user[-1]
        where = f" (at {os.path.basename(frame.filename)}:{frame.lineno} in {frame.name})"
    message = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {message}{where}" if message else f"{type(error).__name__}{where}"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m baton.run FILE MODULE:FUNCTION (Baton starts this; BATON_PYTHON_CALL holds the "
              "arguments)", file=sys.stderr)
        return 2
    path, target = argv
    call = _load_json_env("BATON_PYTHON_CALL", {"args": [], "kwargs": {}})
    task = call.get("task") or os.environ.get("BATON_TASK") or target
    try:
        function = load_target(path, target)
    except Exception as error:
        _print_traceback(error)
        reason = f"cannot load task '{task}' from {os.path.basename(path)}: {_reason(error, path)}"
        print(f"baton: {reason}", file=sys.stderr)
        _write_error(reason)
        return 1
    resolver = Resolver(task)
    _context.mark_running(task)
    try:
        args = [resolver.resolve(item) for item in call.get("args", [])]
        kwargs = {key: resolver.resolve(item) for key, item in call.get("kwargs", {}).items()}
        result = function(*args, **kwargs)
    except SystemExit:
        raise
    except BaseException as error:
        _print_traceback(error)
        reason = _reason(error, path)
        print(f"baton: task '{task}' failed: {reason}", file=sys.stderr, flush=True)
        _write_error(reason)
        return 1
    try:
        text = json.dumps(wrap(result, call.get("wrap", False)), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        reason = (f"task '{task}' returned a {type(result).__name__} that is not JSON ({error}); return JSON values "
                  "(dict, list, str, int, float, bool, None), e.g. a datetime as .isoformat() or a path as str(path)")
        print(f"baton: {reason}", file=sys.stderr, flush=True)
        _write_error(reason)
        return 1
    size = len(text.encode("utf-8"))
    if size > MAX_OUTPUT_BYTES:
        reason = (f"task '{task}' returned {size} bytes of JSON, over Baton's {MAX_OUTPUT_BYTES}-byte limit for a "
                  "task's output; write large data to a file or dataset and return its path")
        print(f"baton: {reason}", file=sys.stderr, flush=True)
        _write_error(reason)
        return 1
    output = os.environ.get("BATON_OUTPUT")
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

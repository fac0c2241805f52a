"""Stand-ins for values that exist only when a run starts.

While Baton reads a pipeline, a task call returns a `TaskResult`, the pipeline function's
parameters are `Param`s and its `event` parameter is an `EventValue`. None of them has a value
yet. They record how they are used: passed to another task they become a dependency and an
input, tested in an `if` they become a `when:` condition (see `_trace.Trace.decide`), and
formatted into a string they become a placeholder the task process fills in.
"""

import json
import math
import re

from ._errors import PipelineDefinitionError

# Names Baton's condition language can reach with a dotted path (ExpressionLexer's identifier).
_PATH_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _user_frame_location():
    from . import _trace  # imported late: _trace imports this module

    return _trace.user_location()


def _misuse(value, what, fix):
    filename, lineno = _user_frame_location()
    raise PipelineDefinitionError(
        f"{value._describe()} {what} while Baton reads the pipeline; it has no value until the run starts",
        fix=fix, filename=filename, lineno=lineno)


class PipelineValue:
    """Base of the stand-ins. `_path` holds the keys and indexes read with `[...]`."""

    __slots__ = ("_trace", "_path")

    def __init__(self, trace, path=()):
        self._trace = trace
        self._path = tuple(path)

    # -- what a subclass provides ---------------------------------------------------------

    def _root_json(self):
        raise NotImplementedError

    def _root_text(self):
        raise NotImplementedError

    def _root_condition(self):
        raise NotImplementedError

    def _derive(self, path):
        raise NotImplementedError

    # -- shared behaviour -----------------------------------------------------------------

    def _describe(self):
        return self._root_text() + "".join(f"[{key!r}]" for key in self._path)

    def _ref_json(self):
        """The JSON a task process resolves (see run._resolve)."""
        data = dict(self._root_json())
        data["path"] = list(self._path)
        return data

    def _condition_path(self):
        """This value as a reference in a `when:` condition, e.g. tasks.validate.output.value.passed."""
        parts = [self._root_condition()]
        for key in self._path:
            if not isinstance(key, str) or not _PATH_KEY.match(key):
                _misuse(self, f"is tested in a condition through the key {key!r}",
                        "conditions can follow keys made of letters, digits, '_' and '-'; "
                        "compute the flag inside a task and return it")
            parts.append(key)
        return ".".join(parts)

    def __getitem__(self, key):
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            _misuse(self, f"is indexed with {key!r}", "index pipeline values with a string key or an integer")
        return self._derive(self._path + (key,))

    def __getattr__(self, name):
        # Only called for missing attributes; dunder lookups (copy, pickle, inspect) must fail
        # normally, and AttributeError keeps hasattr() working.
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"{self._describe()} has no attribute {name!r} while Baton reads the pipeline; "
            f"to pass one key of it to a task, write {self._describe()}[{name!r}]")

    def __bool__(self):
        return self._trace.decide(Condition("truthy", self))

    def __eq__(self, other):
        return Condition("==", self, other)

    def __ne__(self, other):
        return Condition("!=", self, other)

    def __lt__(self, other):
        return Condition("<", self, other)

    def __le__(self, other):
        return Condition("<=", self, other)

    def __gt__(self, other):
        return Condition(">", self, other)

    def __ge__(self, other):
        return Condition(">=", self, other)

    def __contains__(self, item):
        # Python turns the result into a bool, which records the decision.
        return Condition("in", item, self)

    __hash__ = object.__hash__

    def __iter__(self):
        _misuse(self, "is looped over or unpacked",
                "pass the whole value to a task and loop there, or return separate values from separate tasks")

    def __len__(self):
        _misuse(self, "is measured with len()", "compute the length inside a task")

    def __int__(self):
        _misuse(self, "is converted with int()", "convert it inside the task that receives it")

    def __float__(self):
        _misuse(self, "is converted with float()", "convert it inside the task that receives it")

    def __index__(self):
        _misuse(self, "is used as an index", "index inside a task")

    def __str__(self):
        return self._trace.format_marker(self, "")

    def __format__(self, spec):
        return self._trace.format_marker(self, spec)

    def __repr__(self):
        return f"<{self._describe()}: known when the run starts>"

    def __rshift__(self, other):
        self._trace.order(self, other)
        return other

    def __rrshift__(self, other):
        self._trace.order(other, self)
        return self

    def __lshift__(self, other):
        self._trace.order(other, self)
        return other

    def __rlshift__(self, other):
        self._trace.order(self, other)
        return self


def _arithmetic(symbol):
    def refuse(self, *_):
        _misuse(self, f"is used with '{symbol}'",
                "do arithmetic inside a task: pass the value to a task and compute there")

    return refuse


for _name, _symbol in [("add", "+"), ("sub", "-"), ("mul", "*"), ("truediv", "/"), ("floordiv", "//"),
                       ("mod", "%"), ("pow", "**"), ("and", "&"), ("or", "|"), ("xor", "^"), ("matmul", "@")]:
    setattr(PipelineValue, f"__{_name}__", _arithmetic(_symbol))
    setattr(PipelineValue, f"__r{_name}__", _arithmetic(_symbol))
for _name, _symbol in [("neg", "-"), ("pos", "+"), ("abs", "abs()"), ("invert", "~"), ("round", "round()")]:
    setattr(PipelineValue, f"__{_name}__", _arithmetic(_symbol))


class TaskResult(PipelineValue):
    """What a task call returns while Baton reads the pipeline: its future output."""

    __slots__ = ("_call",)

    def __init__(self, trace, call, path=()):
        super().__init__(trace, path)
        self._call = call

    def _derive(self, path):
        return TaskResult(self._trace, self._call, path)

    def _root_json(self):
        return {"$baton": "output", "task": self._call.name}

    def _root_text(self):
        return f"the result of task '{self._call.name}'"

    def _root_condition(self):
        # A result tested in a condition is always written as {"value": ...} (see Trace.decide),
        # so its path does not depend on what the function happens to return.
        return f"tasks.{self._call.name}.output.value"


class Param(PipelineValue):
    """A pipeline parameter; its value comes from the run (defaults, --param, the trigger form)."""

    __slots__ = ("_name",)

    def __init__(self, trace, name, path=()):
        super().__init__(trace, path)
        self._name = name

    def _derive(self, path):
        return Param(self._trace, self._name, path)

    def _root_json(self):
        return {"$baton": "param", "name": self._name}

    def _root_text(self):
        return f"the param '{self._name}'"

    def _root_condition(self):
        return f"params.{self._name}"


class EventValue(PipelineValue):
    """The event that started the run. `event["key"]` reads its payload; `.name`, `.id` and
    `.source` the event itself; `.payload` the whole payload."""

    __slots__ = ("_field",)

    def __init__(self, trace, field="payload", path=()):
        super().__init__(trace, path)
        self._field = field

    def _derive(self, path):
        return EventValue(self._trace, self._field, path)

    def _root_json(self):
        return {"$baton": "event", "field": self._field}

    def _root_text(self):
        return "the event" if self._field == "payload" else f"the event's {self._field}"

    def _root_condition(self):
        return f"event.{self._field}"

    def __getattr__(self, name):
        if name in ("name", "id", "source", "created_at") and self._field == "payload" and not self._path:
            return EventValue(self._trace, name)
        if name == "payload" and self._field == "payload" and not self._path:
            return self
        return PipelineValue.__getattr__(self, name)


class Condition:
    """A test of pipeline values (`result`, `result == 1`, `"eu" in params_region`) that an `if`
    turns into a decision. It renders as a Baton `when:` condition."""

    __slots__ = ("op", "left", "right")

    def __init__(self, op, left, right=None):
        self.op = op
        self.left = left
        self.right = right

    def _trace(self):
        for side in (self.left, self.right):
            if isinstance(side, PipelineValue):
                return side._trace
        return None

    def __bool__(self):
        trace = self._trace()
        if trace is None:  # pragma: no cover - a Condition always holds a PipelineValue
            raise PipelineDefinitionError("a condition without a pipeline value")
        return trace.decide(self)

    def values(self):
        return [side for side in (self.left, self.right) if isinstance(side, PipelineValue)]

    def key(self):
        """Identity of the test, to check that every branch replays the same decisions."""
        def side_key(side):
            if isinstance(side, PipelineValue):
                return ("value", json.dumps(side._ref_json(), sort_keys=True))
            return ("literal", json.dumps(side, sort_keys=True, default=repr))

        return (self.op, side_key(self.left), side_key(self.right) if self.op != "truthy" else None)

    def render(self):
        if self.op == "truthy":
            return self.left._condition_path()
        return f"{_operand(self.left, self)} {self.op} {_operand(self.right, self)}"

    def describe(self):
        if self.op == "truthy":
            return self.left._describe()
        return f"{_describe_side(self.left)} {self.op} {_describe_side(self.right)}"

    def __repr__(self):
        return f"<condition {self.describe()}>"


def _describe_side(side):
    return side._describe() if isinstance(side, PipelineValue) else repr(side)


def _operand(side, condition):
    if isinstance(side, PipelineValue):
        return side._condition_path()
    return condition_literal(side, condition)


def condition_literal(value, condition=None):
    """A Python value in Baton's condition syntax (JSON-like, strings in double quotes)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _literal_error(value, condition, "use a finite number")
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        escaped = escaped.replace("\r", "\\r")
        if any(ord(ch) < 0x20 for ch in escaped):
            raise _literal_error(value, condition, "conditions cannot hold control characters")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(condition_literal(item, condition) for item in value) + "]"
    raise _literal_error(value, condition, "compare with a string, number, boolean, None or a list of them")


def _literal_error(value, condition, fix):
    filename, lineno = _user_frame_location()
    where = f" in the condition {condition.describe()}" if condition is not None else ""
    return PipelineDefinitionError(
        f"{value!r} ({type(value).__name__}){where} cannot be written as a Baton condition",
        fix=fix, filename=filename, lineno=lineno)

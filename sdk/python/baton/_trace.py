"""Recording a pipeline function's task calls.

Baton calls the pipeline function while it reads the file (like an Airflow DAG file). Each
`@task` call is recorded and returns a `TaskResult`. The recording becomes a Baton pipeline:

- data flow: a call whose arguments hold another call's result needs that call, and gets its
  output as the argument's value;
- side-effect steps: a call whose result nothing uses (`run_integration_tests(container)`) is a
  barrier: every task called after it waits for it, so the function reads top to bottom;
- branches: `if` on a pipeline value cannot be decided now, so the function is called once per
  combination of decisions; a task called only on some branches gets a `when:` condition that
  holds exactly on those branches.
"""

import json
import os
import sys
import threading

from ._errors import PipelineDefinitionError
from ._values import Condition, PipelineValue, TaskResult

_SDK_DIR = os.path.dirname(os.path.abspath(__file__))
MAX_BRANCHES = 256

_local = threading.local()


def current_trace():
    return getattr(_local, "trace", None)


def pipeline_file():
    """The file Baton is reading (set by describe), to point errors at its lines."""
    return getattr(_local, "pipeline_file", None)


def set_pipeline_file(path):
    _local.pipeline_file = os.path.abspath(path) if path else None


def user_location(frame=None):
    """(filename, line) of the innermost user frame: in the pipeline file when there is one,
    else the first frame outside the SDK."""
    frame = frame or sys._getframe(1)
    target = pipeline_file()
    first_outside = None
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_SDK_DIR + os.sep):
            if target is not None and filename == target:
                return filename, frame.f_lineno
            if first_outside is None:
                first_outside = (filename, frame.f_lineno)
        frame = frame.f_back
    return first_outside or (None, None)


def _call_site():
    """Identity of the code location of a task call: same line and bytecode offset means the
    same call on every replay of the function (loops count occurrences separately)."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_SDK_DIR + os.sep):
        frame = frame.f_back
    if frame is None:  # pragma: no cover - a call always comes from user code
        return ("?", 0, 0), (None, None)
    filename, lineno = user_location(frame)
    return (frame.f_code.co_filename, frame.f_lineno, frame.f_lasti), (filename, lineno)


class Naming:
    """Task names shared by every replay of one pipeline function, so a call keeps its name on
    every branch. The first call site of a function gets its name; later ones `name_2`, ..."""

    def __init__(self):
        self.by_site = {}
        self.taken = set()

    def name_for(self, site, occurrence, base):
        key = (site, occurrence)
        if key not in self.by_site:
            name, n = base, 2
            while name in self.taken:
                name, n = f"{base}_{n}", n + 1
            self.taken.add(name)
            self.by_site[key] = name
        return self.by_site[key]


class Call:
    """One recorded task call."""

    def __init__(self, name, task, options, args, kwargs, data_needs, prefix, location):
        self.name = name
        self.task = task
        self.options = options
        self.args = args
        self.kwargs = kwargs
        self.data_needs = data_needs
        self.prefix = prefix
        self.filename, self.lineno = location

    def signature(self):
        return json.dumps([self.task.target(), self.args, self.kwargs, self.options], sort_keys=True, default=repr)


class Trace:
    """One replay of the pipeline function along one combination of decisions."""

    def __init__(self, naming, decisions, shared):
        self.naming = naming
        self.decisions = list(decisions)
        self.taken = []          # (Condition, bool) in the order the function made them
        self.calls = []
        self.site_counts = {}
        self.used = set()        # names of calls whose result something consumed
        self.tested = set()      # names of calls whose result a condition reads
        self.explicit = []       # (upstream, downstream) from `a >> b`
        self.shared = shared     # markers for values formatted into strings, across replays

    # -- calls ---------------------------------------------------------------------------

    def record(self, task, options, args, kwargs):
        site, location = _call_site()
        occurrence = self.site_counts.get(site, 0)
        self.site_counts[site] = occurrence + 1
        name = self.naming.name_for(site, occurrence, options.get("name") or task.name)
        if any(call.name == name for call in self.calls):
            raise PipelineDefinitionError(
                f"two calls are both named task '{name}'", fix="give each call its own name with .options(name=...)",
                filename=location[0], lineno=location[1])
        needs = []
        where = f"task '{name}'"
        encoded_args = [self.encode(value, needs, f"argument {index + 1} of {where}")
                        for index, value in enumerate(args)]
        encoded_kwargs = {key: self.encode(value, needs, f"argument '{key}' of {where}")
                          for key, value in kwargs.items()}
        call = Call(name, task, options, encoded_args, encoded_kwargs, needs, tuple(self.decisions[:len(self.taken)]),
                    location)
        self.calls.append(call)
        return TaskResult(self, call)

    def encode(self, value, needs, where):
        """A task argument as JSON for the task process; pipeline values become references
        (and dependencies), everything else must be JSON already."""
        if isinstance(value, PipelineValue):
            self.consume(value, needs)
            return value._ref_json()
        if isinstance(value, Condition):
            self.fail(f"{where} is the comparison {value.describe()}, which has no value until the run starts",
                      "compare inside a task, or use it in an `if` to run tasks conditionally")
        if isinstance(value, str):
            return self.shared.encode_string(value, self, needs)
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                self.fail(f"{where} is {value}, which JSON cannot hold", "pass a finite number or None")
            return value
        if isinstance(value, (list, tuple)):
            return [self.encode(item, needs, f"{where}[{index}]") for index, item in enumerate(value)]
        if isinstance(value, dict):
            result = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    self.fail(f"{where} has the key {key!r} ({type(key).__name__}); JSON keys are strings",
                              "use string keys")
                result[key] = self.encode(item, needs, f"{where}[{key!r}]")
            # A literal dict that looks like a reference is wrapped so the task process keeps it.
            return {"$baton": "dict", "value": result} if "$baton" in result else result
        self.fail(f"{where} is a {type(value).__name__} ({_short_repr(value)}), which Baton cannot pass to a task "
                  f"process", "pass JSON values (str, int, float, bool, None, lists and dicts of them), e.g. a "
                  "datetime as .isoformat() or a path as str(path)")

    def consume(self, value, needs):
        if isinstance(value, TaskResult):
            self.used.add(value._call.name)
            if value._call.name not in needs:
                needs.append(value._call.name)

    def order(self, upstream, downstream):
        """`a >> b`: b waits for a (lists on either side)."""
        ups = upstream if isinstance(upstream, (list, tuple)) else [upstream]
        downs = downstream if isinstance(downstream, (list, tuple)) else [downstream]
        for up in ups:
            for down in downs:
                if not isinstance(up, TaskResult) or not isinstance(down, TaskResult):
                    self.fail("`>>` and `<<` order task results, e.g. extract() >> load()",
                              "put task call results on both sides")
                self.used.add(up._call.name)
                self.explicit.append((up._call.name, down._call.name))

    # -- branches ------------------------------------------------------------------------

    def decide(self, condition):
        index = len(self.taken)
        if index < len(self.decisions):
            outcome = self.decisions[index]
        else:
            outcome = True
            self.decisions.append(outcome)
        condition.render()  # reports a condition Baton cannot express at the `if`, not later
        for value in condition.values():
            if isinstance(value, TaskResult):
                self.used.add(value._call.name)
                self.tested.add(value._call.name)
        self.taken.append((condition, outcome))
        return outcome

    # -- strings -------------------------------------------------------------------------

    def format_marker(self, value, spec):
        return self.shared.marker(value, spec)

    def fail(self, message, fix):
        filename, lineno = user_location()
        raise PipelineDefinitionError(message, fix=fix, filename=filename, lineno=lineno)


class Shared:
    """State shared by the replays of one pipeline: values formatted into strings. f"{x}" on a
    pipeline value gives a marker; a task argument holding markers becomes a template the task
    process fills in."""

    OPEN, CLOSE = "\ue000", "\ue001"

    def __init__(self):
        self.formatted = []

    def marker(self, value, spec):
        self.formatted.append((value, spec))
        return f"{self.OPEN}{len(self.formatted) - 1}{self.CLOSE}"

    def encode_string(self, text, trace, needs):
        if self.OPEN not in text:
            return text
        parts = []
        rest = text
        while self.OPEN in rest:
            before, _, after = rest.partition(self.OPEN)
            number, found, rest = after.partition(self.CLOSE)
            if not found or not number.isdigit() or int(number) >= len(self.formatted):
                return text  # not one of ours
            if before:
                parts.append(before)
            value, spec = self.formatted[int(number)]
            trace.consume(value, needs)
            parts.append({"value": value._ref_json(), "spec": spec})
        if rest:
            parts.append(rest)
        return {"$baton": "format", "parts": parts}


def _short_repr(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Formula:
    """Boolean formulas over decisions, reduced like a decision diagram."""

    TRUE = ("true",)
    FALSE = ("false",)

    @staticmethod
    def combine(condition, when_true, when_false):
        T, F = _Formula.TRUE, _Formula.FALSE
        if when_true == when_false:
            return when_true
        test = ("cond", condition.key())
        if when_true == T and when_false == F:
            return test
        if when_true == F and when_false == T:
            return ("not", test)
        parts = []
        if when_true != F:
            parts.append(test if when_true == T else ("and", test, when_true))
        if when_false != F:
            parts.append(("not", test) if when_false == T else ("and", ("not", test), when_false))
        return parts[0] if len(parts) == 1 else ("or", parts[0], parts[1])

    @staticmethod
    def render(formula, conditions):
        """Baton condition text; `conditions` maps each test's key to the Condition."""
        kind = formula[0]
        if kind == "cond":
            return conditions[formula[1]].render()
        if kind == "not":
            return f"not {_Formula.group(formula[1], conditions)}"
        joiner = " and " if kind == "and" else " or "
        return joiner.join(_Formula.group(part, conditions) for part in formula[1:])

    @staticmethod
    def group(formula, conditions):
        """Parenthesized unless it is a bare truth test (or `not` of one)."""
        text = _Formula.render(formula, conditions)
        atomic = formula[0] == "cond" and conditions[formula[1]].op == "truthy"
        negated_atomic = formula[0] == "not" and formula[1][0] == "cond" and conditions[formula[1][1]].op == "truthy"
        return text if atomic or negated_atomic else f"({text})"

    @staticmethod
    def values(formula, into, conditions):
        kind = formula[0]
        if kind == "cond":
            into.extend(conditions[formula[1]].values())
        elif kind in ("not", "and", "or"):
            for part in formula[1:]:
                _Formula.values(part, into, conditions)
        return into


class Recording:
    """Every replay of one pipeline function, merged into tasks."""

    def __init__(self, traces, location):
        self.traces = traces
        self.location = location

    def tasks(self):
        """[(name, first Call, needs, when text, has when, result tested)] in first-call order."""
        traces = self.traces
        first = {}
        order = []
        node_calls = {}
        node_conditions = {}
        conditions = {}
        tested = set()
        for trace in traces:
            tested |= trace.tested
            for index, (condition, _) in enumerate(trace.taken):
                prefix = tuple(trace.decisions[:index])
                known = node_conditions.get(prefix)
                if known is not None and known.key() != condition.key():
                    filename, lineno = self.location
                    raise PipelineDefinitionError(
                        f"the pipeline function tested {condition.describe()} where an earlier replay tested "
                        f"{known.describe()}; Baton calls the function once per branch and needs the same "
                        "decisions each time", fix="do not use random numbers, the clock or other changing state "
                        "in the pipeline function itself", filename=filename, lineno=lineno)
                node_conditions[prefix] = condition
                conditions.setdefault(condition.key(), condition)
            for call in trace.calls:
                node_calls.setdefault(call.prefix, set()).add(call.name)
                if call.name not in first:
                    first[call.name] = call
                    order.append(call.name)
                elif first[call.name].signature() != call.signature():
                    lines = sorted({first[call.name].lineno, call.lineno})
                    raise PipelineDefinitionError(
                        f"task '{call.name}' is called with different arguments or options depending on an earlier "
                        f"`if` on a pipeline value (line{'s' if len(lines) > 1 else ''} "
                        f"{' and '.join(str(line) for line in lines)})",
                        fix="call the task inside each branch, so each branch has its own task",
                        filename=call.filename, lineno=call.lineno)

        memo = {}

        def formula(name, prefix):
            key = (name, prefix)
            if key in memo:
                return memo[key]
            if name in node_calls.get(prefix, ()):
                result = _Formula.TRUE
            elif prefix not in node_conditions:
                result = _Formula.FALSE
            else:
                result = _Formula.combine(node_conditions[prefix], formula(name, prefix + (True,)),
                                          formula(name, prefix + (False,)))
            memo[key] = result
            return result

        needs = {name: list(first[name].data_needs) for name in order}
        whens = {}
        for name in order:
            f = formula(name, ())
            if f != _Formula.TRUE:
                whens[name] = f
                for value in _Formula.values(f, [], conditions):
                    if isinstance(value, TaskResult) and value._call.name not in needs[name]:
                        needs[name].append(value._call.name)

        for trace in traces:
            self._barriers(trace, needs)

        return [(name, first[name], needs[name], _Formula.render(whens[name], conditions) if name in whens else None,
                 name in whens, name in tested) for name in order]

    @staticmethod
    def _barriers(trace, needs):
        """Adds, per replay, the waits for earlier side-effect steps (results nothing used),
        skipping those the task already waits for through other needs."""
        ancestors = {}
        explicit = {}
        for up, down in trace.explicit:
            explicit.setdefault(down, []).append(up)
        for index, call in enumerate(trace.calls):
            own = needs[call.name]
            for up in explicit.get(call.name, []):
                if up not in own:
                    own.append(up)
            seen = set()
            for need in call.data_needs + explicit.get(call.name, []):
                seen.add(need)
                seen |= ancestors.get(need, set())
            for earlier in reversed(trace.calls[:index]):
                if earlier.name in trace.used or earlier.name in seen:
                    continue
                if earlier.name not in own:
                    own.append(earlier.name)
                seen.add(earlier.name)
                seen |= ancestors.get(earlier.name, set())
            ancestors[call.name] = seen


def record(pipeline, arguments):
    """Calls the pipeline function once per branch; returns the Recording."""
    naming = Naming()
    shared = Shared()
    traces = []
    pending = [[]]
    while pending:
        decisions = pending.pop()
        trace = Trace(naming, decisions, shared)
        previous = current_trace()
        _local.trace = trace
        try:
            pipeline.fn(**arguments(trace))
        finally:
            _local.trace = previous
        traces.append(trace)
        if len(traces) > MAX_BRANCHES:
            filename, lineno = pipeline.location()
            raise PipelineDefinitionError(
                f"pipeline '{pipeline.fn.__name__}' has more than {MAX_BRANCHES} combinations of `if` decisions on "
                "pipeline values", fix="decide inside tasks and return the result, or split the pipeline",
                filename=filename, lineno=lineno)
        # Every decision this replay made first (beyond the replayed prefix) has an untried
        # False branch.
        for index in range(len(decisions), len(trace.decisions)):
            pending.append(trace.decisions[:index] + [False])
    return Recording(traces, pipeline.location())

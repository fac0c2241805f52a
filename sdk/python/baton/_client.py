"""Talking to the Baton that runs the task: events, metrics and dataset freshness.

Under `baton up` every task gets `BATON_SERVER` (and `BATON_TOKEN` when auth is on); the SDK
uses the REST API there. Without a server (`baton trigger --wait` runs the pipeline in the CLI
process) tasks get `BATON_DB` and `BATON_CLI` instead, and the SDK runs that `baton` binary on
the same database (argv, never a shell). Outside Baton there is nothing to talk to, and the
functions say so.
"""

import datetime
import decimal
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from . import _context, _trace
from ._errors import BatonAPIError, BatonError, DataSLAViolation, PipelineDefinitionError

_TIMEOUT = 30
_published = {}
_last_check = None


# ---------------------------------------------------------------------------------------------
# JSON for payloads: the seed publishes {"timestamp": datetime.now()}
# ---------------------------------------------------------------------------------------------

def _json_default(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.astimezone()  # a naive datetime is local time, as datetime.now() gives
        return value.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON")


def to_json(value, what):
    try:
        return json.dumps(value, default=_json_default, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise BatonError(f"{what} cannot be sent as JSON: {error}",
                         fix="use strings, numbers, booleans, None, lists, dicts, datetimes and dates") from None


# ---------------------------------------------------------------------------------------------
# Transport
# ---------------------------------------------------------------------------------------------

def _not_while_reading(function):
    if _trace.current_trace() is not None:
        filename, lineno = _trace.user_location()
        raise PipelineDefinitionError(
            f"{function}() is called in the pipeline function, which runs when Baton reads the file, not when the "
            "pipeline runs", fix=f"call {function}() inside a @task function", filename=filename, lineno=lineno)


def server_url():
    url = os.environ.get("BATON_SERVER") or os.environ.get("BATON_URL")
    return url.rstrip("/") if url else None


def _request(method, path, body=None, query=None, raw=False):
    """JSON in, JSON out (text out with `raw`); connection failures are retried briefly (a
    server restarting)."""
    url = server_url() + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = to_json(body, "the request").encode("utf-8") if body is not None else None
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    token = os.environ.get("BATON_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    delays = [0.2, 0.5, 1.0, 2.0]
    while True:
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                text = response.read().decode("utf-8")
                if raw:
                    return text
                return json.loads(text) if text else {}
        except urllib.error.HTTPError as error:
            raise _api_error(error, method, path) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            if not delays:
                raise BatonAPIError(
                    f"cannot reach Baton at {server_url()} ({getattr(error, 'reason', error)}) for {method} {path}",
                    fix="check that `baton up` is running and BATON_SERVER points at it") from None
            time.sleep(delays.pop(0))


def _api_error(error, method, path):
    try:
        document = json.loads(error.read().decode("utf-8"))
        detail = document.get("error", {})
    except (ValueError, AttributeError):
        detail = {}
    message = detail.get("message") or f"HTTP {error.code}"
    field = detail.get("field")
    fix = detail.get("fix") if isinstance(detail.get("fix"), str) else None
    if error.code in (401, 403) and not fix:
        fix = "set BATON_TOKEN to a token with the operator role (baton tokens create --role operator)"
    text = f"Baton refused {method} {path}: {message}" + (f" (field {field})" if field else "")
    return BatonAPIError(text, fix=fix, status=error.code, code=detail.get("code"), field=field)


def _cli(*args):
    """Runs the `baton` binary that runs this task on the task's database (no server)."""
    cli = os.environ.get("BATON_CLI")
    database = os.environ.get("BATON_DB")
    command = [cli, *args, "--db", database, "--json"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BatonAPIError(f"cannot run {cli} {args[0]} {args[1] if len(args) > 1 else ''}: {error}") from None
    if done.returncode != 0:
        message = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise BatonAPIError(f"`baton {' '.join(args[:2])}` failed: {' '.join(message)[:500]}")
    text = done.stdout.strip()
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {"output": text}


def _transport(function):
    _not_while_reading(function)
    if server_url():
        return "http"
    if os.environ.get("BATON_CLI") and os.environ.get("BATON_DB"):
        return "cli"
    raise BatonError(
        f"{function}() needs a Baton to talk to, and this process was not started by one (no BATON_SERVER)",
        fix="run the task through `baton up` or `baton trigger`, or set BATON_SERVER=http://HOST:PORT "
            "(and BATON_TOKEN) to reach a server")


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------

def publish_event(name, payload=None, id=None, source=None):
    """Publishes an event; every pipeline triggered by `name` (whose filter matches) starts a run.

    Inside a task the default id is derived from the run, the task and the event name, so a
    retried attempt does not publish the event (and start its runs) a second time; pass `id` to
    choose (events with an id seen before are ignored). Returns the server's answer: the
    stored event, `duplicate`, and the `run_ids` started.
    """
    payload = {} if payload is None else payload
    if not isinstance(payload, dict):
        raise BatonError(f"the payload of event {name!r} must be a dict, got {type(payload).__name__}",
                         fix="publish_event(name, {'record_count': 1000})")
    context = _context.TaskContext()
    if id is None and context.run_id is not None and context.task:
        count = _published.get(name, 0) + 1
        _published[name] = count
        id = f"run-{context.run_id}-{context.task}-{name}" + (f"-{count}" if count > 1 else "")
    if source is None and context.pipeline:
        source = f"{context.pipeline}.{context.task}" if context.task else context.pipeline
    body = json.loads(to_json(payload, f"the payload of event {name!r}"))
    if _transport("publish_event") == "http":
        request = {"name": name, "payload": body}
        if id is not None:
            request["id"] = id
        if source is not None:
            request["source"] = source
        return _request("POST", "/api/v1/events", request)
    args = ["events", "publish", name, "--data", json.dumps(body)]
    if id is not None:
        args += ["--id", id]
    if source is not None:
        args += ["--source", source]
    return _cli(*args)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def emit_metric(name, value, tags=None, timestamp=None):
    """Records one point of a shared metric, e.g.
    `emit_metric("pipeline.duration", 42.5, tags={"pipeline": "churn_training", "owner": "ml_engineering"})`.
    Tag values are sent as text. Shown by `baton metrics query`, on /metrics and on /dashboard."""
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        raise BatonError(f"metric {name!r} needs a number, got {type(value).__name__} {value!r}",
                         fix="pass an int or a float, e.g. emit_metric('rows.loaded', 1000)")
    value = float(value)
    if tags is not None and not isinstance(tags, dict):
        raise BatonError(f"the tags of metric {name!r} must be a dict of name to value, got {tags!r}")
    tags = {str(key): str(item) for key, item in (tags or {}).items()}
    when = json.loads(to_json(timestamp, "timestamp")) if timestamp is not None else None
    if _transport("emit_metric") == "http":
        body = {"name": name, "value": value, "tags": tags}
        if when is not None:
            body["timestamp"] = when
        return _request("POST", "/api/v1/metrics", body)
    args = ["metrics", "emit", name]
    for key, item in sorted(tags.items()):
        args += ["--tag", f"{key}={item}"]
    if when is not None:
        args += ["--timestamp", when]
    args.append(repr(value))
    return _cli(*args)


# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------

class FreshnessCheck:
    """What one check_data_freshness found, for DataSLAViolation's message."""

    def __init__(self, dataset, age, owner, last_update):
        self.dataset = dataset
        self.age = age
        self.owner = owner
        self.last_update = last_update or {}

    def describe(self):
        owner = f"owner {self.owner}" if self.owner else "no owner declared"
        if self.age is None:
            return f"dataset {self.dataset} has never been updated ({owner})"
        update = self.last_update
        when = str(update.get("updated_at") or "").replace("T", " ").replace("Z", " UTC")
        by = (f"run {update['run_id']} of {update.get('pipeline') or '?'}" if update.get("run_id") is not None
              else "an external publisher")
        return f"dataset {self.dataset} is {format_duration(self.age)} old (last update {when} by {by}, {owner})"


def last_freshness_check():
    return _last_check


def format_duration(delta):
    """Like Baton's durations: 3h5m20s, 2m, 45s, 1d2h."""
    seconds = int(round(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+(\.\d+)?(ms|s|m|h|d))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def _seconds(value, what):
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _DURATION.match(value.strip()):
        return sum(float(number) * _UNITS[unit] for number, unit in _DURATION_PART.findall(value.strip()))
    raise BatonError(f"{what} {value!r} is not a duration", fix="write it like '2h', a number of seconds or a timedelta")


def check_data_freshness(dataset, max_staleness=None):
    """How old the latest update of a catalog dataset is, as a timedelta.

    Raises DataSLAViolation when the dataset has never been updated, or, with `max_staleness`
    ('2h', seconds or a timedelta), when it is older than that; the message names the dataset,
    its age, the limit, the last producing run and the owner, like Baton's own contract checks.
    """
    global _last_check
    limit = _seconds(max_staleness, "max_staleness")
    if _transport("check_data_freshness") == "http":
        document = _request("GET", f"/api/v1/datasets/{urllib.parse.quote(dataset, safe='')}")
        info = document.get("dataset", document)
        last_update = info.get("last_update")
    else:
        rows = _cli("catalog", dataset, "--pipelines", _pipelines_folder())
        info = rows[0] if isinstance(rows, list) and rows else {}
        updates = info.get("updates") or []
        last_update = None
        if updates:
            newest = updates[0]
            last_update = {"updated_at": newest.get("updatedAt") or newest.get("updated_at"),
                           "run_id": newest.get("runID", newest.get("run_id")),
                           "pipeline": newest.get("pipeline")}
    age_seconds = info.get("age_seconds")
    age = datetime.timedelta(seconds=age_seconds) if age_seconds is not None and last_update else None
    check = FreshnessCheck(dataset, age, info.get("owner"), last_update)
    _last_check = check
    if age is None:
        raise DataSLAViolation(check.describe(), dataset=dataset, details=check.describe())
    if limit is not None and age.total_seconds() > limit:
        details = check.describe().replace(" old (", f" old, over the {format_duration(datetime.timedelta(seconds=limit))} limit (", 1)
        raise DataSLAViolation(details, dataset=dataset, age=age, limit=datetime.timedelta(seconds=limit),
                               details=details)
    return age


def _pipelines_folder():
    return os.environ.get("BATON_PIPELINES") or os.getcwd()

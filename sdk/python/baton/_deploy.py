"""Model deployments from a task: canary, monitor, validate, promote or roll back.

    from baton import deploy_canary, monitor_canary, validate_metrics, deploy_full, rollback

    deploy_canary("churn", model="models:/churn@champion", traffic_percent=10)   # waits until it takes traffic
    metrics = monitor_canary("churn", duration_seconds=120)                     # canary vs stable figures
    if validate_metrics(metrics, max_error_rate=0.01, max_p99_latency_ms=50):
        deploy_full("churn")
    else:
        rollback("churn", reason="validation failed")

Everything goes through Baton's deployments API (`/api/v1/deployments/...`) and gateway
(`/serve/{deployment}/...`) at BATON_SERVER, with BATON_TOKEN when set; see
docs/model-deployments.md. Baton analyses canaries on its own and may roll one back while a
pipeline watches it: `monitor_canary` then raises CanaryRolledBack at once instead of reporting
figures of a canary that no longer serves.
"""

import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from . import _client, _context
from ._errors import BatonAPIError, BatonError

#: Rollout states after which no canary serves any more.
ENDED_BADLY = ("rolled_back", "aborted")
_POLL_SECONDS = 0.5


class DeploymentError(BatonAPIError):
    """A deployments request Baton refused, or a deployment that did not do what was asked."""


class DeploymentNotFound(DeploymentError):
    """No deployment of that name (HTTP 404)."""


class DeploymentConflict(DeploymentError):
    """The deployment is busy with something else, e.g. a rollout in progress (HTTP 409)."""


class CanaryRolledBack(DeploymentError):
    """The canary was rolled back (by Baton's analysis or by someone) or aborted."""

    def __init__(self, message, fix=None, status=None, code=None, field=None, rollout=None):
        super().__init__(message, fix, status=status, code=code, field=field)
        self.rollout = rollout or {}


class DeploymentTimeout(DeploymentError):
    """The deployment did not reach the wanted state in time."""


class PredictionError(DeploymentError):
    """The gateway answered a prediction request with an error."""


# ---------------------------------------------------------------------------------------------
# Transport
# ---------------------------------------------------------------------------------------------

def _path(deployment, suffix=""):
    if not isinstance(deployment, str) or not deployment:
        raise BatonError(f"a deployment is named by a non-empty string, got {deployment!r}",
                         fix="e.g. deploy_canary('churn', ...)")
    return f"/api/v1/deployments/{urllib.parse.quote(deployment, safe='')}{suffix}"


def _need_server(function):
    _client._not_while_reading(function)
    if not _client.server_url():
        raise BatonError(
            f"{function}() needs the Baton server that runs the deployment (no BATON_SERVER)",
            fix="run the task through `baton up`, or set BATON_SERVER=http://HOST:PORT (and BATON_TOKEN)")


def _typed(error):
    """The SDK's generic refusal as the deployments error of its status."""
    kind = {404: DeploymentNotFound, 409: DeploymentConflict}.get(error.status, DeploymentError)
    return kind(error.message, fix=error.fix, status=error.status, code=error.code, field=error.field)


def _call(function, method, path, body=None, query=None):
    _need_server(function)
    try:
        return _client._request(method, path, body, query=query)
    except DeploymentError:
        raise
    except BatonAPIError as error:
        raise _typed(error) from None


def _reason(reason):
    """An explicit reason, or else the pipeline task that decided (for the audit trail)."""
    if reason:
        return str(reason)
    context = _context.TaskContext()
    if context.pipeline and context.task:
        return f"pipeline {context.pipeline} run {context.run_id} task {context.task}"
    return None


# ---------------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------------

def deployment_status(deployment):
    """The deployment's status document: stable and canary versions with their replicas,
    traffic, rollout state and per-version stats (docs/model-deployments.md)."""
    return _call("deployment_status", "GET", _path(deployment))


def deployment_events(deployment):
    """The deployment's audit trail, newest as the server orders it."""
    return _call("deployment_events", "GET", _path(deployment, "/events"))


def _version(part):
    if not part or part.get("version") is None:
        return None
    return str(part["version"])


def _healthy(part):
    return any((replica or {}).get("state") == "healthy" for replica in (part or {}).get("replicas") or [])


def _replica_states(part):
    replicas = (part or {}).get("replicas") or []
    if not replicas:
        return "no replicas"
    return ", ".join(f"{r.get('id', '?')} {r.get('state', '?')}"
                     + (f" ({r['restarts']} restarts)" if r.get("restarts") else "") for r in replicas)


def _rollout_reason(rollout):
    """Why a rollout ended, in words, from whatever the server recorded."""
    rollout = rollout or {}
    for key in ("reason", "message"):
        if rollout.get(key):
            return str(rollout[key])
    analysis = rollout.get("last_analysis")
    if isinstance(analysis, dict):
        for key in ("reason", "message", "summary"):
            if analysis.get(key):
                return str(analysis[key])
        failed = [check for check in analysis.get("checks") or [] if isinstance(check, dict) and not check.get("passed", True)]
        if failed:
            return "; ".join(str(check.get("detail") or check.get("name")) for check in failed)
    elif analysis:
        return str(analysis)
    return None


def _rolled_back(deployment, version, rollout):
    state = (rollout or {}).get("state")
    why = _rollout_reason(rollout)
    word = "rolled back" if state == "rolled_back" else state
    return CanaryRolledBack(
        f"the canary v{version} of deployment {deployment} was {word}" + (f": {why}" if why else ""),
        fix=f"see `baton deploy history {deployment}` for who decided and the analysis",
        rollout=rollout)


# ---------------------------------------------------------------------------------------------
# Canary
# ---------------------------------------------------------------------------------------------

def _resolve_version(reference):
    """The registry version a `models:/NAME/N` or `models:/NAME@ALIAS` reference names, as text
    (None for other references: then the server's answer tells)."""
    if not isinstance(reference, str) or not reference.startswith("models:/"):
        return None
    rest = reference[len("models:/"):]
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        quoted = urllib.parse.quote(name, safe="")
        try:
            found = _client._request("GET", f"/api/v1/models/{quoted}/approved", query={"alias": alias})
        except BatonAPIError as error:
            if error.status == 404:
                raise DeploymentError(f"model reference {reference} does not resolve: {error.message}", status=404,
                                      field="model", fix=f"approve a version with `baton models approve {name} VERSION`") from None
            raise _typed(error) from None
        return _version(found)
    name, _, number = rest.rpartition("/")
    return number if name and number.isdigit() else None


def _taking_traffic(status, version, shadow):
    """Whether `version` serves: as the canary with a healthy replica and a traffic share (or a
    shadow copy), or as the stable version when it was the first deployment."""
    canary = status.get("canary")
    traffic = status.get("traffic") or {}
    if _version(canary) == version:
        share = traffic.get("canary_percent") or 0
        mirrored = shadow or traffic.get("mode") == "shadow"
        return _healthy(canary) and (mirrored or share > 0)
    stable = status.get("stable")
    return canary is None and _version(stable) == version and _healthy(stable)


def deploy_canary(deployment, model=None, traffic_percent=10, shadow=False, wait=True, timeout=300, steps=None):
    """Starts a canary of `model` (default: the deployment's own `model`, e.g.
    models:/churn@champion) at `traffic_percent` % of the traffic (None: the deployment's rollout
    steps; `steps` overrides them), or as a shadow that only gets copies.

    With `wait`, returns once the canary's replicas are healthy and take traffic; raises
    CanaryRolledBack if it is rolled back meanwhile and DeploymentTimeout after `timeout`
    seconds. The first deployment of a model becomes stable directly. Returns the status
    document (with `wait`) or the server's answer.
    """
    _need_server("deploy_canary")
    if traffic_percent is not None:
        if isinstance(traffic_percent, bool) or not isinstance(traffic_percent, (int, float)) \
                or not 0 < traffic_percent <= 100:
            raise BatonError(f"traffic_percent must be a number in (0, 100], got {traffic_percent!r}",
                             fix="e.g. deploy_canary('churn', traffic_percent=10)")
    if model is None:
        model = deployment_status(deployment).get("model")
        if not model:
            raise DeploymentError(f"deployment {deployment} declares no model, and deploy_canary() was given none",
                                  fix=f"deploy_canary({deployment!r}, model='models:/NAME@champion')")
    version = _resolve_version(model)
    body = {"model": model, "shadow": bool(shadow)}
    if traffic_percent is not None:
        body["percent"] = traffic_percent
    if steps is not None:
        body["steps"] = steps
    answer = _call("deploy_canary", "POST", _path(deployment, "/canary"), body)
    if version is None:
        version = _version((answer or {}).get("canary")) or _version(answer) or _version((answer or {}).get("stable"))
    if not wait:
        return answer
    if version is None:
        raise DeploymentError(f"cannot tell which version {model} is, so cannot wait for it",
                              fix="name the model by version (models:/NAME/N) or pass wait=False")
    deadline = time.monotonic() + timeout
    while True:
        status = deployment_status(deployment)
        if _taking_traffic(status, version, shadow):
            return status
        rollout = status.get("rollout") or {}
        # The POST started this rollout, so its end is this canary's (even while its replicas
        # are still listed, draining).
        if rollout.get("state") in ENDED_BADLY:
            raise _rolled_back(deployment, version, rollout)
        if time.monotonic() >= deadline:
            part = status.get("canary") if _version(status.get("canary")) == version else status.get("stable")
            raise DeploymentTimeout(
                f"the canary v{version} of deployment {deployment} does not take traffic after {timeout:g}s "
                f"(replicas: {_replica_states(part)})",
                fix=f"look at `baton deploy status {deployment}` and the replicas' logs; "
                    f"`baton deploy abort {deployment}` stops it")
        time.sleep(_POLL_SECONDS)


def deploy_full(deployment, reason=None):
    """Promotes the canary: it becomes stable and takes 100 % of the traffic."""
    body = {}
    why = _reason(reason)
    if why:
        body["reason"] = why
    return _call("deploy_full", "POST", _path(deployment, "/promote"), body)


def rollback(deployment, reason=None):
    """Rolls the canary back: it gets 0 %, its replicas drain and stop; stable keeps serving."""
    body = {}
    why = _reason(reason)
    if why:
        body["reason"] = why
    return _call("rollback", "POST", _path(deployment, "/rollback"), body)


# ---------------------------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------------------------

FIGURES = ("requests", "errors", "error_rate", "p50_ms", "p99_ms")


def _figures(status, version):
    if version is None:
        return None
    stats = (status.get("stats") or {}).get(version) or {}
    figures = {"version": version}
    for name in FIGURES:
        value = stats.get(name)
        figures[name] = value if value is not None else (0 if name in ("requests", "errors") else None)
    if figures["error_rate"] is None:
        figures["error_rate"] = (figures["errors"] / figures["requests"]) if figures["requests"] else 0.0
    return figures


def monitor_canary(deployment, duration_seconds=120, interval_seconds=5, on_sample=None):
    """Watches the deployment for `duration_seconds`, reading its status every
    `interval_seconds`, and returns the canary's and stable's figures at the end:

        {"deployment": "churn", "rollout_state": "progressing", "traffic": {...},
         "canary": {"version": "4", "requests": 100, "errors": 0, "error_rate": 0.0, "p50_ms": 2.3, "p99_ms": 7.1},
         "stable": {"version": "3", ...}, "last_analysis": {...}, "samples": 25, "duration_seconds": 120.0}

    Raises CanaryRolledBack as soon as the canary is rolled back or aborted meanwhile. Without a
    canary (the first deployment went straight to stable) `canary` is None. A promotion
    meanwhile ends the watch early with rollout_state "promoted". `on_sample(status)` is called
    after each read (e.g. to log progress).
    """
    if duration_seconds < 0 or interval_seconds <= 0:
        raise BatonError(f"monitor_canary needs duration_seconds >= 0 and interval_seconds > 0, got "
                         f"{duration_seconds!r} and {interval_seconds!r}")
    started = time.monotonic()
    status = deployment_status(deployment)
    canary_version = _version(status.get("canary"))
    stable_version = _version(status.get("stable"))
    samples = 0
    while True:
        samples += 1
        rollout = status.get("rollout") or {}
        if canary_version is not None and _version(status.get("canary")) != canary_version:
            if rollout.get("state") == "promoted" or _version(status.get("stable")) == canary_version:
                break
            if rollout.get("state") in ENDED_BADLY or status.get("canary") is None:
                raise _rolled_back(deployment, canary_version, rollout)
        if rollout.get("state") in ENDED_BADLY and canary_version is not None:
            raise _rolled_back(deployment, canary_version, rollout)
        if on_sample is not None:
            on_sample(status)
        remaining = duration_seconds - (time.monotonic() - started)
        if remaining <= 0:
            break
        time.sleep(min(interval_seconds, remaining))
        status = deployment_status(deployment)
    rollout = status.get("rollout") or {}
    return {
        "deployment": deployment,
        "rollout_state": rollout.get("state"),
        "traffic": status.get("traffic") or {},
        "canary": _figures(status, canary_version),
        "stable": _figures(status, stable_version if stable_version != canary_version else None),
        "last_analysis": rollout.get("last_analysis"),
        "samples": samples,
        "duration_seconds": round(time.monotonic() - started, 3),
    }


# ---------------------------------------------------------------------------------------------
# Validation (pure)
# ---------------------------------------------------------------------------------------------

class Check:
    """One threshold compared with one figure."""

    def __init__(self, name, passed, value, limit, detail):
        self.name = name
        self.passed = passed
        self.value = value
        self.limit = limit
        self.detail = detail

    def to_dict(self):
        return {"name": self.name, "passed": self.passed, "value": self.value, "limit": self.limit,
                "detail": self.detail}

    def __repr__(self):
        return f"Check({self.detail!r}, passed={self.passed})"


class ValidationResult:
    """What validate_metrics found: truthy when every check passed; `failures` holds the reason
    of each failed check, `checks` all of them."""

    def __init__(self, checks):
        self.checks = list(checks)

    @property
    def passed(self):
        return all(check.passed for check in self.checks)

    @property
    def failures(self):
        return [check.detail for check in self.checks if not check.passed]

    @property
    def reason(self):
        if self.passed:
            return "all checks passed: " + "; ".join(check.detail for check in self.checks) if self.checks \
                else "no checks asked for"
        return "; ".join(self.failures)

    def __bool__(self):
        return self.passed

    def to_dict(self):
        return {"passed": self.passed, "reason": self.reason, "failures": self.failures,
                "checks": [check.to_dict() for check in self.checks]}

    def __repr__(self):
        return f"ValidationResult(passed={self.passed}, reason={self.reason!r})"


_ALIASES = {"p99_ms": ("latency_ms_p99",), "p50_ms": ("latency_ms_p50",)}


def _figure(figures, name):
    for key in (name, *_ALIASES.get(name, ())):
        value = figures.get(key)
        if value is not None:
            return value
    return None


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_metrics(metrics, max_error_rate=None, max_p99_latency_ms=None, min_requests=None,
                     max_error_rate_increase=None, max_p99_latency_ratio=None, **extra):
    """Compares monitor_canary's figures with thresholds; returns a ValidationResult (truthy
    when every check passed) with the reason of each failed check.

    `metrics` is monitor_canary's result (the canary's figures under "canary", stable's under
    "stable") or a flat dict of the canary's figures. The increase and ratio checks compare the
    canary with stable. Any other `min_NAME=` / `max_NAME=` checks the canary's figure NAME
    (looked up in the canary's figures, then at the top level), e.g. `min_accuracy=0.6`.
    A figure that is missing fails its check.
    """
    if not isinstance(metrics, dict):
        raise BatonError(f"validate_metrics needs a dict of figures (monitor_canary's result), got {type(metrics).__name__}")
    for key in extra:
        if not key.startswith(("min_", "max_")) or len(key) <= 4:
            raise BatonError(f"validate_metrics() got an unknown threshold {key}=",
                             fix="extra thresholds are named min_FIGURE or max_FIGURE, e.g. min_accuracy=0.6")
    if "canary" in metrics or "stable" in metrics:
        canary, stable = metrics.get("canary"), metrics.get("stable") or {}
    else:
        canary, stable = metrics, {}
    checks = []
    if canary is None:
        checks.append(Check("canary", False, None, None, "no canary figures (no canary was monitored)"))
        return ValidationResult(checks)

    def bound(name, figure, limit, upper, unit="", value=None, label=None):
        value = _figure(canary, figure) if value is None else value
        label = label or figure.replace("_", " ")
        if not _number(value):
            checks.append(Check(name, False, value, limit, f"{label}: no figure (limit {limit:g}{unit})"))
            return
        passed = value <= limit if upper else value >= limit
        sign = ("<=" if passed else ">") if upper else (">=" if passed else "<")
        checks.append(Check(name, passed, value, limit, f"{label} {value:.4g}{unit} {sign} {'max' if upper else 'min'} {limit:g}{unit}"))

    if min_requests is not None:
        bound("min_requests", "requests", min_requests, upper=False, label="canary requests")
    if max_error_rate is not None:
        bound("max_error_rate", "error_rate", max_error_rate, upper=True, label="canary error rate")
    if max_p99_latency_ms is not None:
        bound("max_p99_latency_ms", "p99_ms", max_p99_latency_ms, upper=True, unit="ms", label="canary p99 latency")
    if max_error_rate_increase is not None:
        canary_rate, stable_rate = _figure(canary, "error_rate"), _figure(stable, "error_rate")
        increase = canary_rate - stable_rate if _number(canary_rate) and _number(stable_rate) else float("nan")
        bound("max_error_rate_increase", "error_rate", max_error_rate_increase, upper=True,
              value=increase, label="error rate increase over stable")
    if max_p99_latency_ratio is not None:
        canary_p99, stable_p99 = _figure(canary, "p99_ms"), _figure(stable, "p99_ms")
        ratio = canary_p99 / stable_p99 if _number(canary_p99) and _number(stable_p99) and stable_p99 > 0 else float("nan")
        bound("max_p99_latency_ratio", "p99_ms", max_p99_latency_ratio, upper=True, value=ratio,
              label="p99 latency ratio to stable")
    for key, limit in sorted(extra.items()):
        figure = key[4:]
        value = _figure(canary, figure)
        if value is None:
            value = _figure(metrics, figure)
        bound(key, figure, limit, upper=key.startswith("max_"), value=value if value is not None else float("nan"),
              label=figure.replace("_", " "))
    return ValidationResult(checks)


# ---------------------------------------------------------------------------------------------
# Gateway: predictions and A/B feedback
# ---------------------------------------------------------------------------------------------

class Prediction(dict):
    """The replica's JSON answer, with the version that answered and the gateway's request id
    (for send_feedback)."""

    def __init__(self, answer, version=None, request_id=None):
        super().__init__(answer if isinstance(answer, dict) else {"answer": answer})
        self.version = version
        self.request_id = request_id


def predict(deployment, payload, key=None, timeout=30):
    """Sends one prediction request through the gateway (`POST /serve/{deployment}/predict`).
    `key` goes as X-Baton-Key for sticky routing. Raises PredictionError on an error answer."""
    _need_server("predict")
    url = f"{_client.server_url()}/serve/{urllib.parse.quote(deployment, safe='')}/predict"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = os.environ.get("BATON_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers["X-Baton-Key"] = str(key)
    data = _client.to_json(payload, "the prediction request").encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode("utf-8")
            return Prediction(json.loads(text) if text else {}, response.headers.get("X-Baton-Version"),
                              response.headers.get("X-Baton-Request-Id"))
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")
        try:
            detail = json.loads(text).get("error")
        except (ValueError, AttributeError):
            detail = None
        message = (detail.get("message") if isinstance(detail, dict) else detail) or text.strip()[:300] or f"HTTP {error.code}"
        raise PredictionError(f"deployment {deployment} answered HTTP {error.code}: {message}",
                              status=error.code, code=detail.get("code") if isinstance(detail, dict) else None) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
        raise PredictionError(f"cannot reach {url} ({getattr(error, 'reason', error)})",
                              fix="check that `baton up` is running and BATON_SERVER points at it") from None


def send_feedback(deployment, request_id, metric, value):
    """Reports a business outcome of one answered request for the A/B summary, e.g.
    send_feedback("churn", prediction.request_id, "converted", 1)."""
    if isinstance(value, bool):
        value = int(value)
    if not _number(value):
        raise BatonError(f"feedback {metric!r} needs a finite number, got {value!r}", fix="e.g. 1 for converted, 0 for not")
    if not request_id:
        raise BatonError("send_feedback needs the request id the gateway answered with (X-Baton-Request-Id)",
                         fix="use predict(...).request_id")
    body = {"request_id": str(request_id), "metric": str(metric), "value": value}
    return _call("send_feedback", "POST", f"/serve/{urllib.parse.quote(deployment, safe='')}/feedback", body)


def start_ab_test(deployment, model, traffic_percent=50):
    """Starts `model` as the candidate of an A/B test holding `traffic_percent` % of the traffic
    until promoted or rolled back; outcomes reported with send_feedback are compared by
    ab_results. Returns the deployment status."""
    _need_server("start_ab_test")
    if isinstance(traffic_percent, bool) or not isinstance(traffic_percent, (int, float)) \
            or not 0 < traffic_percent <= 100:
        raise BatonError(f"traffic_percent must be a number in (0, 100], got {traffic_percent!r}",
                         fix="e.g. start_ab_test('churn', 'models:/churn/4', traffic_percent=50)")
    body = {"model": model, "percent": traffic_percent, "ab": True}
    return _call("start_ab_test", "POST", _path(deployment, "/canary"), body)


def ab_results(deployment):
    """Per variant the count, mean and 95 % interval of each feedback metric, and the difference."""
    return _call("ab_results", "GET", _path(deployment, "/ab"))

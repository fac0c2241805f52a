"""Experiment tracking and the model registry, from inside a task (standard library only).

Baton's server speaks MLflow's REST API, so training code that uses the official `mlflow`
client needs nothing from here. These helpers are for code that does not want that dependency,
and for the seed's two hand-off calls:

    run = baton.start_run("churn", params={"lr": 0.1})
    run.log_metric("f1", 0.81)
    run.log_artifact("model.json", artifact_path="model")
    run.end()
    version = baton.register_model("churn", run_id=run.run_id, artifact_path="model", approve=True)

    model = baton.get_approved_model_from_registry("churn", download_to="serving/model")

Inside a Baton task `MLFLOW_TRACKING_URI` names the server with the task's run, task and attempt
in the path, so every run and model version made here is linked to the pipeline run (lineage).
"""

import json
import os
import pathlib
import time
import urllib.error
import urllib.parse
import urllib.request

from . import _client
from ._errors import BatonAPIError, BatonError

APPROVAL_ALIAS = "champion"
_TIMEOUT = 60
# The run start_run began and has not ended: log_baseline's default run, like MLflow's active run.
_active_run = None


class ModelNotApproved(BatonError):
    """No version of the model holds the approval alias (yet)."""


def _tracking_url():
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    server = _client.server_url()
    if server:
        return server
    raise BatonError("no tracking server: neither MLFLOW_TRACKING_URI nor BATON_SERVER is set",
                     fix="run the task under `baton up`, or set MLFLOW_TRACKING_URI=http://HOST:PORT of a Baton server")


def _headers(content_type="application/json"):
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    token = os.environ.get("MLFLOW_TRACKING_TOKEN") or os.environ.get("BATON_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _call(method, url, body=None, raw=None, content_type="application/json"):
    """One request; MLflow's and Baton's error shapes both become BatonAPIError."""
    data = raw if raw is not None else (_client.to_json(body, "the request").encode("utf-8") if body is not None else None)
    delays = [0.2, 0.5, 1.0, 2.0]
    while True:
        request = urllib.request.Request(url, data=data, method=method, headers=_headers(content_type if data is not None else None))
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                payload = response.read()
                if content_type != "application/json":
                    return payload
                return json.loads(payload.decode("utf-8")) if payload else {}
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            try:
                document = json.loads(text)
            except ValueError:
                document = {}
            detail = document.get("error") if isinstance(document.get("error"), dict) else {}
            code = document.get("error_code") or detail.get("code")
            message = document.get("message") or detail.get("message") or f"HTTP {error.code}"
            raise BatonAPIError(f"{method} {url.split('?')[0]}: {message}", status=error.code, code=code) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            if not delays:
                raise BatonAPIError(f"cannot reach {url.split('?')[0]} ({getattr(error, 'reason', error)})",
                                    fix="check that the Baton server runs and MLFLOW_TRACKING_URI / BATON_SERVER point at it") from None
            time.sleep(delays.pop(0))


def _mlflow(method, endpoint, body=None, query=None):
    url = f"{_tracking_url()}/api/2.0/mlflow/{endpoint}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    return _call(method, url, body)


def _millis():
    return int(time.time() * 1000)


class TrackingRun:
    """An MLflow run on the Baton server: params, metrics, tags and artifacts."""

    def __init__(self, info):
        self.info = info
        self.run_id = info["run_id"]
        self.experiment_id = info["experiment_id"]
        self.artifact_uri = info["artifact_uri"]
        self._step = {}

    def log_param(self, key, value):
        _mlflow("POST", "runs/log-parameter", {"run_id": self.run_id, "key": key, "value": str(value)})

    def log_params(self, params):
        items = [{"key": k, "value": str(v)} for k, v in params.items()]
        for start in range(0, len(items), 100):
            _mlflow("POST", "runs/log-batch", {"run_id": self.run_id, "params": items[start:start + 100]})

    def log_metric(self, key, value, step=None):
        step = self._step.get(key, -1) + 1 if step is None else int(step)
        self._step[key] = step
        _mlflow("POST", "runs/log-metric", {"run_id": self.run_id, "key": key, "value": float(value),
                                            "timestamp": _millis(), "step": step})

    def log_metrics(self, metrics, step=0):
        now = _millis()
        items = [{"key": k, "value": float(v), "timestamp": now, "step": int(step)} for k, v in metrics.items()]
        for start in range(0, len(items), 1000):
            _mlflow("POST", "runs/log-batch", {"run_id": self.run_id, "metrics": items[start:start + 1000]})

    def set_tag(self, key, value):
        _mlflow("POST", "runs/set-tag", {"run_id": self.run_id, "key": key, "value": str(value)})

    def log_artifact(self, local_path, artifact_path=None):
        """Uploads one file under the run's artifacts (in `artifact_path`, a folder, if given)."""
        path = pathlib.Path(local_path)
        if not path.is_file():
            raise BatonError(f"no file at {local_path} to log as an artifact")
        target = "/".join(p for p in [_relative(self.artifact_uri), artifact_path, path.name] if p)
        _call("PUT", f"{_tracking_url()}/api/2.0/mlflow-artifacts/artifacts/{urllib.parse.quote(target)}",
              raw=path.read_bytes(), content_type="application/octet-stream")

    def log_artifacts(self, local_dir, artifact_path=None):
        root = pathlib.Path(local_dir)
        for file in sorted(root.rglob("*")):
            if file.is_file():
                folder = file.parent.relative_to(root).as_posix()
                self.log_artifact(file, "/".join(p for p in [artifact_path, folder if folder != "." else None] if p))

    def end(self, status="FINISHED"):
        global _active_run
        _mlflow("POST", "runs/update", {"run_id": self.run_id, "status": status, "end_time": _millis()})
        if _active_run is self:
            _active_run = None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        self.end("FAILED" if kind else "FINISHED")
        return False


def start_run(experiment="Default", run_name=None, tags=None, params=None):
    """Starts a run in the experiment (created when missing) and returns it."""
    try:
        experiment_id = _mlflow("GET", "experiments/get-by-name", query={"experiment_name": experiment})["experiment"]["experiment_id"]
    except BatonAPIError as error:
        if error.code != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            experiment_id = _mlflow("POST", "experiments/create", {"name": experiment})["experiment_id"]
        except BatonAPIError as again:
            if again.code != "RESOURCE_ALREADY_EXISTS":  # another task created it meanwhile
                raise
            experiment_id = _mlflow("GET", "experiments/get-by-name", query={"experiment_name": experiment})["experiment"]["experiment_id"]
    body = {"experiment_id": experiment_id, "start_time": _millis(), "user_id": os.environ.get("USER", "baton"),
            "tags": [{"key": k, "value": str(v)} for k, v in (tags or {}).items()]}
    if run_name:
        body["run_name"] = run_name
    global _active_run
    run = TrackingRun(_mlflow("POST", "runs/create", body)["run"]["info"])
    if params:
        run.log_params(params)
    _active_run = run
    return run


def active_run():
    """The run start_run began that has not ended yet, or None."""
    return _active_run


def get_run(run_id):
    """An existing run by id (to log more artifacts to it)."""
    return TrackingRun(_mlflow("GET", "runs/get", query={"run_id": run_id})["run"]["info"])


def _relative(uri):
    """The artifact API path of an `mlflow-artifacts:/...` URI."""
    if not uri.startswith("mlflow-artifacts:"):
        raise BatonError(f"artifact URI {uri} is not on a Baton server")
    rest = uri[len("mlflow-artifacts:"):]
    if rest.startswith("//"):
        rest = rest[2:].split("/", 1)[1] if "/" in rest[2:] else ""
    return rest.lstrip("/")


def _baton(method, path, body=None):
    server = _client.server_url()
    if not server:
        tracking = _tracking_url()
        server = tracking.split("/tasks/")[0]
    return _call(method, server + path, body)


def register_model(name, run_id=None, artifact_path=None, source=None, description=None, tags=None,
                   approve=False, alias=APPROVAL_ALIAS, note=None):
    """Registers a new version of model `name` from a run's artifacts (or any `source` URI).

    With `approve=True` the version is approved for deployment at once (the `alias` moves to it,
    recorded with who and why). Returns the version as Baton's API shows it: `version`,
    `artifact_uri`, `artifact_path` (on the server's disk), `run_id`, lineage.
    """
    if source is None:
        if not run_id:
            raise BatonError("register_model needs the run_id of the run whose artifacts hold the model (or a source URI)")
        source = f"runs:/{run_id}/{artifact_path}" if artifact_path else f"runs:/{run_id}"
    try:
        _mlflow("POST", "registered-models/create", {"name": name})
    except BatonAPIError as error:
        if error.code != "RESOURCE_ALREADY_EXISTS":
            raise
    body = {"name": name, "source": source, "tags": [{"key": k, "value": str(v)} for k, v in (tags or {}).items()]}
    if run_id:
        body["run_id"] = run_id
    if description:
        body["description"] = description
    version = _mlflow("POST", "model-versions/create", body)["model_version"]["version"]
    quoted = urllib.parse.quote(name, safe="")
    if approve:
        return approve_model(name, int(version), alias=alias, note=note)
    return _baton("GET", f"/api/v1/models/{quoted}/versions/{version}")


def approve_model(name, version, alias=APPROVAL_ALIAS, note=None, by=None):
    """Approves a version for deployment: the alias moves to it, recorded with who, when and why."""
    body = {"alias": alias}
    if note:
        body["note"] = note
    actor = by or os.environ.get("BATON_PIPELINE") and f"{os.environ.get('BATON_PIPELINE')}.{os.environ.get('BATON_TASK', '')}"
    if actor:
        body["by"] = actor
    quoted = urllib.parse.quote(name, safe="")
    return _baton("POST", f"/api/v1/models/{quoted}/versions/{int(version)}/approve", body)


def get_approved_model_from_registry(name, alias=APPROVAL_ALIAS, download_to=None):
    """The version of `name` approved for deployment (the one holding `alias`).

    Raises ModelNotApproved when no version is approved yet. With `download_to`, the version's
    files are downloaded into that folder and `local_path` names it.
    """
    quoted = urllib.parse.quote(name, safe="")
    try:
        version = _baton("GET", f"/api/v1/models/{quoted}/approved?alias={urllib.parse.quote(alias)}")
    except BatonAPIError as error:
        if error.status == 404:
            raise ModelNotApproved(f"no version of model '{name}' is approved ('{alias}'): {error.message}",
                                   fix=f"approve one with `baton models approve {name} VERSION`") from None
        raise
    if download_to is not None:
        version["local_path"] = str(download_artifacts(version["artifact_uri"], download_to))
    return version


def get_model_version(name, version, download_to=None):
    """One version of model `name`, as `get_approved_model_from_registry` answers it."""
    quoted = urllib.parse.quote(name, safe="")
    found = _baton("GET", f"/api/v1/models/{quoted}/versions/{int(version)}")
    if download_to is not None:
        found["local_path"] = str(download_artifacts(found["artifact_uri"], download_to))
    return found


def download_artifacts(artifact_uri, destination):
    """Downloads every file under an artifact URI into `destination`; returns the folder."""
    root = _relative(artifact_uri)
    destination = pathlib.Path(destination)
    base = _tracking_url()
    pending = [""]
    while pending:
        folder = pending.pop()
        listed = _call("GET", f"{base}/api/2.0/mlflow-artifacts/artifacts?" + urllib.parse.urlencode({"path": "/".join(p for p in [root, folder] if p)}))
        for entry in listed.get("files", []):
            relative = "/".join(p for p in [folder, entry["path"]] if p)
            if entry.get("is_dir"):
                pending.append(relative)
                continue
            data = _call("GET", f"{base}/api/2.0/mlflow-artifacts/artifacts/{urllib.parse.quote(root + '/' + relative)}",
                         content_type="application/octet-stream")
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
    return destination

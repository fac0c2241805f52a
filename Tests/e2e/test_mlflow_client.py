"""The official `mlflow` Python client, unchanged, against Baton's MLflow-compatible tracking
server and model registry (issue 7).

`mlflow_workflow.py` drives the pinned client (installed in `.venv-mlflow/` by
`scripts/install-deps.sh --test`) through experiments, runs, params, metrics, tags, artifacts,
MLflow 3 logged models, the model registry, aliases and stages, asserting every result; this
module runs it in a subprocess against `baton up` and asserts that every step passed.

With BATON_MLFLOW_E2E_REFERENCE=1 the same driver also runs against a real `mlflow server`
from the venv (SQLite and a served artifact folder in a temp dir): that is how the driver's
expectations were checked to be MLflow's own behaviour, and how anyone can check them again.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DRIVER = pathlib.Path(__file__).resolve().parent / "mlflow_workflow.py"
VENV = pathlib.Path(os.environ.get("BATON_MLFLOW_VENV") or REPO / ".venv-mlflow")
VENV_PYTHON = VENV / "bin" / "python"
REQUIREMENT = (REPO / "scripts" / "mlflow-requirements.txt").read_text().split()[0]  # "mlflow==X.Y.Z"
PINNED_VERSION = REQUIREMENT.split("==")[1]
DRIVER_TIMEOUT = 600


def require_venv():
    if not os.access(VENV_PYTHON, os.X_OK):
        pytest.fail(f"the mlflow client venv is missing at {VENV}; create it with scripts/install-deps.sh --test")


def run_driver(tracking_uri, workdir, only=()):
    """Runs the driver with the venv's python against `tracking_uri`; returns (process, report or None)."""
    require_venv()
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    report_path = workdir / "mlflow-report.json"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    environment.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        # A wrong 5xx fails the step at once instead of hanging in the client's retry backoff.
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="60",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        TMPDIR=str(workdir),
        PYTHONUNBUFFERED="1",
    )
    command = [str(VENV_PYTHON), str(DRIVER), "--report", str(report_path)]
    for step in only:
        command += ["--only", step]
    try:
        process = subprocess.run(command, env=environment, cwd=workdir, capture_output=True, text=True, timeout=DRIVER_TIMEOUT)
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"the mlflow driver did not finish within {DRIVER_TIMEOUT}s; its output so far:\n{timeout.stdout}\n{timeout.stderr}")
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return process, report


def describe(process, report, server_log=None):
    lines = [f"driver exit status {process.returncode}"]
    if report:
        for step in report["steps"]:
            mark = "PASS" if step["ok"] else "FAIL"
            lines.append(f"  {mark} {step['name']} ({step['checks']} checks passed)")
            if step["error"]:
                lines += ["      " + line for line in step["error"].splitlines()]
    lines += ["--- driver stdout (tail) ---", process.stdout[-4000:], "--- driver stderr (tail) ---", process.stderr[-4000:]]
    if server_log is not None:
        lines += ["--- server log (tail) ---", server_log[-4000:]]
    return "\n".join(lines)


def assert_every_step_passed(process, report, server_log=None):
    assert report is not None, "the driver wrote no report\n" + describe(process, report, server_log)
    assert report["mlflow_version"] == PINNED_VERSION, f"the venv has mlflow {report['mlflow_version']}, not {PINNED_VERSION}"
    failed = [step["name"] for step in report["steps"] if not step["ok"]]
    assert not failed, f"steps failed: {failed}\n" + describe(process, report, server_log)
    assert process.returncode == 0, describe(process, report, server_log)
    assert len(report["steps"]) >= 13 and all(step["checks"] > 0 for step in report["steps"]), describe(process, report)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url, process, log_path, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited with {process.returncode}:\n{pathlib.Path(log_path).read_text(errors='replace')[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"mlflow server was not healthy within {timeout}s:\n{pathlib.Path(log_path).read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)


def test_official_mlflow_client_against_baton(baton_server, tmp_path):
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    server = baton_server(pipelines)
    process, report = run_driver(server.url, tmp_path / "driver")
    assert_every_step_passed(process, report, server.log())


@pytest.mark.skipif(os.environ.get("BATON_MLFLOW_E2E_REFERENCE") != "1",
                    reason="set BATON_MLFLOW_E2E_REFERENCE=1 to check the driver against a real mlflow server")
def test_official_mlflow_client_against_real_mlflow_server(tmp_path):
    require_venv()
    port = free_port()
    log_path = tmp_path / "mlflow-server.log"
    command = [str(VENV / "bin" / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
               "--artifacts-destination", str(tmp_path / "mlartifacts"), "--serve-artifacts",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    environment = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   env=environment, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, process, log_path)
        driver, report = run_driver(url, tmp_path / "driver")
        assert_every_step_passed(driver, report, log_path.read_text(errors="replace"))
    finally:
        # The server runs uvicorn workers and job consumers in its session: all of them go.
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


class NotMLflow(BaseHTTPRequestHandler):
    """Answers every request 404 with an MLflow-shaped error, like a server without the routes."""

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"error_code": "ENDPOINT_NOT_FOUND", "message": "no such route"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    def log_message(self, *arguments):
        pass


def test_driver_reports_failures_from_a_server_without_the_routes(tmp_path):
    """The driver can fail: against a server that knows no MLflow route, the steps fail, the
    report says why, and the exit status is 1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotMLflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        process, report = run_driver(url, tmp_path, only=("experiments", "registered_models"))
    finally:
        server.shutdown()
        server.server_close()
    assert process.returncode == 1, describe(process, report)
    assert [(step["name"], step["ok"]) for step in report["steps"]] == [("experiments", False), ("registered_models", False)]
    assert all(step["error"] for step in report["steps"]), describe(process, report)
    assert "steps passed" in process.stdout and "FAIL experiments" in process.stdout


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))

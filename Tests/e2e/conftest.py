"""Shared fixtures for the end-to-end tests, which drive the real `baton` binary.

`baton_server` is a factory: call it with a pipelines folder and it starts `baton up --port 0`
on a fresh database, waits for the `web UI and API on http://HOST:PORT` log line and returns a
`BatonServer` with `.url`, `.db`, `.pipelines_dir`, `.process` and small HTTP helpers. Every
server it started is stopped at teardown: SIGTERM (graceful: running tasks are requeued), then
SIGKILL of the whole process group if it has not exited within 10 seconds.

For a server shared by a module, call `start_baton(...)` from a module-scoped fixture and
`server.stop()` after the `yield`.

The binary is `$BATON_BINARY`, or `.build/debug/baton` in the repository.
"""

import json
import os
import pathlib
import re
import signal
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("BATON_BINARY") or str(REPO / ".build" / "debug" / "baton")
LISTENING = re.compile(r"web UI and API on (http://\S+)")


class HTTPResult:
    """One HTTP exchange: status, headers (lower-case names) and body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {name.lower(): value for name, value in headers.items()}
        self.body = body

    @property
    def content_type(self):
        return self.headers.get("content-type", "")

    @property
    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"HTTP {self.status} {self.content_type} {self.body[:500]!r}"


class BatonServer:
    """A running `baton up`."""

    def __init__(self, process, url, root, db, pipelines_dir, log_path):
        self.process = process
        self.url = url
        self.root = root
        self.db = db
        self.pipelines_dir = pipelines_dir
        self.log_path = log_path

    def log(self):
        """What the server has written to stderr so far."""
        return pathlib.Path(self.log_path).read_text(errors="replace")

    def request(self, method, path, body=None, token=None, headers=None, timeout=30):
        """Sends a request; 4xx and 5xx answers are returned, not raised."""
        data = body
        all_headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return HTTPResult(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return HTTPResult(error.code, dict(error.headers), error.read())

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body=body, **kwargs)

    def wait_for_run(self, run_id, states=("success", "failed", "cancelled"), timeout=60, token=None):
        """Polls the run until its state is one of `states`; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.get(f"/api/v1/runs/{run_id}", token=token)
            assert result.status == 200, result
            run = result.json()
            if run["state"] in states:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} is still {run['state']} after {timeout}s: {run}")
            time.sleep(0.05)

    def stop(self):
        """SIGTERM, then SIGKILL to the process group after 10 seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)


def write_pipelines(folder, pipelines):
    """Writes `{name: yaml}` as `folder/name.yaml`; returns the folder."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in pipelines.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def start_baton(pipelines_dir, root=None, args=(), env=None, timeout=30):
    """Starts `baton up --port 0` on `pipelines_dir` with a database in `root` (a new temp
    folder by default) and returns the `BatonServer` once it listens."""
    if not os.access(BINARY, os.X_OK):
        pytest.fail(f"the baton binary is missing at {BINARY}; build it with `swift build` or set BATON_BINARY")
    root = pathlib.Path(root or tempfile.mkdtemp(prefix="baton-e2e-"))
    root.mkdir(parents=True, exist_ok=True)
    db = root / "baton.db"
    log_path = root / "baton-up.log"
    command = [BINARY, "up", "--port", "0", "--host", "127.0.0.1", "--pipelines", str(pipelines_dir), "--db", str(db), *args]
    with open(log_path, "wb") as log:
        # A session of its own, so a SIGKILL fallback can take its task processes too.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout
    while True:
        text = log_path.read_text(errors="replace")
        match = LISTENING.search(text)
        if match:
            return BatonServer(process, match.group(1), str(root), str(db), str(pipelines_dir), str(log_path))
        if process.poll() is not None:
            pytest.fail(f"baton up exited with {process.returncode} before listening:\n{text}")
        if time.monotonic() > deadline:
            diagnosis = describe_stuck_process(process.pid)
            process.kill()
            pytest.fail(f"baton up did not report its address within {timeout}s:\n{text}\n{diagnosis}")
        time.sleep(0.05)


def describe_stuck_process(pid):
    """What a server that never got to listen was doing: CPU time, each thread's state and
    kernel wait, its listening sockets and (with gdb installed) every thread's stack, so a start
    that hangs once in a hundred runs can be diagnosed from the one failure's output."""
    lines = []
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        lines.append(f"process {pid}: user {int(fields[11]) / ticks:.2f}s, system {int(fields[12]) / ticks:.2f}s CPU")
        for task in sorted(pathlib.Path(f"/proc/{pid}/task").iterdir()):
            name = (task / "comm").read_text().strip()
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = (task / "wchan").read_text().strip() if (task / "wchan").exists() else "?"
            lines.append(f"  thread {task.name} {name}: state {state}, waiting in {wchan or '-'}")
        sockets = {os.readlink(fd).removeprefix("socket:[").rstrip("]")
                   for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd).startswith("socket:")}
        for table in ("tcp", "tcp6"):
            for row in pathlib.Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
                columns = row.split()
                if columns[9] in sockets and columns[3] == "0A":
                    lines.append(f"  listening on {table} port {int(columns[1].split(':')[1], 16)}")
    except OSError as error:
        lines.append(f"(could not read /proc for {pid}: {error})")
    if shutil.which("gdb"):
        try:
            stacks = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 25"],
                                    capture_output=True, text=True, timeout=60).stdout
            lines.append(stacks[-20000:])
        except subprocess.TimeoutExpired:
            lines.append("(gdb did not finish within 60 s)")
    return "\n".join(lines)


@pytest.fixture
def baton_server(tmp_path):
    """Factory: `baton_server(pipelines_dir, args=(...), env={...})` -> BatonServer."""
    started = []

    def start(pipelines_dir, args=(), env=None, timeout=30):
        root = tmp_path / f"baton-{len(started)}"
        server = start_baton(pipelines_dir, root=root, args=args, env=env, timeout=timeout)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()

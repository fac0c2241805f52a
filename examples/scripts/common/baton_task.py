"""Tiny helpers for writing Baton tasks in Python (standard library only).

Baton hands every task its context through environment variables:

    BATON_OUTPUT    path of a file the task may write ONE JSON object to;
                    that object becomes the task's output
    BATON_INPUTS    JSON object with the outputs of the direct upstream tasks
    BATON_PARAMS    JSON object with the run's params
    BATON_RUN_ID, BATON_PIPELINE, BATON_TASK, BATON_ATTEMPT,
    BATON_LOGICAL_DATE, BATON_DATA_INTERVAL_START, BATON_DATA_INTERVAL_END
    BATON_EVENT     the event that started the run (event-triggered runs only)

Under `baton up` tasks also get BATON_SERVER (the server's URL), BATON_TOKEN
(when auth is on) and BATON_CLI (the baton binary), so `baton_cli(...)` can
publish events and emit metrics to the server that runs the task.

Every helper has a sensible fallback, so a script can also be run by hand:
`python3 scripts/customer_data_pipeline/extract.py transactions`.

All example state lives under examples/var/ (override with BATON_EXAMPLES_VAR),
and every write goes through a temporary file plus an atomic rename, so a task
killed half-way never leaves a torn file behind.
"""

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import sqlite3
import tempfile
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parents[2]
DATA_DIR = EXAMPLES_DIR / "data"


# --------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------

def var_dir() -> Path:
    """Root of all runtime state (examples/var, or $BATON_EXAMPLES_VAR)."""
    root = os.environ.get("BATON_EXAMPLES_VAR")
    path = Path(root).expanduser().resolve() if root else EXAMPLES_DIR / "var"
    path.mkdir(parents=True, exist_ok=True)
    return path


def params() -> dict:
    """The run's params (pipeline defaults merged with trigger overrides)."""
    raw = os.environ.get("BATON_PARAMS", "").strip()
    return json.loads(raw) if raw else {}


def param(name, default=None):
    return params().get(name, default)


def param_bool(name, default=False) -> bool:
    """Params may arrive as real booleans or as strings from `--param x=true`."""
    value = params().get(name, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def param_float(name, default) -> float:
    return float(params().get(name, default))


def param_int(name, default) -> int:
    """Numbers may arrive as 24, 24.0 or "24"."""
    return int(float(params().get(name, default)))


def read_inputs() -> dict:
    """Outputs of the direct upstream tasks: {"task_name": {...}}.

    BATON_INPUTS normally holds the JSON itself; a path to a JSON file is
    accepted too.  Upstream tasks that wrote no output may map to null.
    """
    raw = os.environ.get("BATON_INPUTS", "").strip()
    if not raw:
        return {}
    if not raw.startswith("{") and os.path.isfile(raw):
        raw = Path(raw).read_text()
    data = json.loads(raw)
    return {k: (v if isinstance(v, dict) else {}) for k, v in data.items()}


def require_input(task: str) -> dict:
    """Output of one upstream task, failing clearly if it is missing."""
    out = read_inputs().get(task)
    if not out:
        fail(f"missing output of upstream task '{task}' in BATON_INPUTS")
    return out


def write_output(obj: dict) -> None:
    """Write this task's output (one JSON object, at most 64 KiB)."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str)
    if len(text.encode()) > 64 * 1024:
        fail("task output is larger than 64 KiB; write the data to a file and output its path")
    path = os.environ.get("BATON_OUTPUT")
    if path:
        atomic_write_text(Path(path), text + "\n")
    print(f"output: {json.dumps(obj, sort_keys=True, default=str)}")


def run_id() -> str:
    return os.environ.get("BATON_RUN_ID", "manual")


def pipeline_name() -> str:
    return os.environ.get("BATON_PIPELINE", "manual")


def task_name() -> str:
    return os.environ.get("BATON_TASK", Path(sys.argv[0]).stem)


def attempt() -> int:
    return int(os.environ.get("BATON_ATTEMPT", "1"))


def parse_ts(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (Python 3.9's fromisoformat rejects 'Z')."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))


def logical_date() -> str:
    """The run's logical date; defaults to the current hour when run by hand."""
    value = os.environ.get("BATON_LOGICAL_DATE")
    if value:
        return iso(parse_ts(value))
    return iso(datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0))


def data_interval():
    """(start, end) of the run's data interval as ISO strings."""
    start = os.environ.get("BATON_DATA_INTERVAL_START") or logical_date()
    end = os.environ.get("BATON_DATA_INTERVAL_END") or start
    return iso(parse_ts(start)), iso(parse_ts(end))


def partition_key() -> str:
    """Folder-safe key for the run's logical date, e.g. 20240601T100000Z.

    Files written per run are keyed by the logical date rather than the run
    id, so re-running the same interval replaces its files instead of
    adding new ones.
    """
    return re.sub(r"[^0-9TZ]", "", logical_date())


# --------------------------------------------------------------------------
# Logging and failing
# --------------------------------------------------------------------------

def begin() -> None:
    """Call at the start of every task: prints a header, marks the run start."""
    print(f"[{now_iso()}] {pipeline_name()}.{task_name()} attempt {attempt()} "
          f"run={run_id()} logical_date={logical_date()}", flush=True)
    _mark_run_start()


def log(message: str) -> None:
    print(message, flush=True)


def fail(message: str, code: int = 1):
    """Print a clear error to stderr and exit non-zero (Baton may retry)."""
    print(f"ERROR: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


# --------------------------------------------------------------------------
# Atomic file helpers
# --------------------------------------------------------------------------

def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def temp_path_for(path: Path) -> Path:
    """A temporary sibling of `path`; write there, then os.replace() it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def temp_dir_for(path: Path) -> Path:
    """A fresh temporary sibling directory of `path` (see replace_dir)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a fully written directory into place, replacing any old one."""
    final = Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{os.getpid()}.old")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sqlite_readonly(path: Path) -> sqlite3.Connection:
    """Open a SQLite file read-only (fails instead of creating an empty one)."""
    uri = "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=30)


@contextlib.contextmanager
def locked(path: Path):
    """Exclusive lock around a read-modify-write of a file shared by pipelines."""
    lock = Path(str(path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prune_partitions(folder: Path, keep: int) -> list:
    """Keep the `keep` newest partitions (sub-folders named by partition_key)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    parts = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    removed = parts[:-keep] if keep > 0 else parts
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
    return [p.name for p in removed]


# --------------------------------------------------------------------------
# Talking to Baton through its CLI
# --------------------------------------------------------------------------

def baton_cli(*args: str, timeout: float = 30) -> bool:
    """Run `${BATON_CLI:-baton} ARGS...` (argv, no shell); True when it worked.

    Best effort: a missing CLI, no Baton to talk to, or a failing command is
    logged as one line and the task carries on.  Under `baton up` the CLI
    reaches the server through BATON_SERVER/BATON_TOKEN.  Without a server
    (`baton trigger --wait`, or running a script by hand) it would open its
    default local database instead of the run's, so it is only called when
    BATON_SERVER or BATON_DB says where Baton is.
    """
    what = " ".join(args[:2])
    if not (os.environ.get("BATON_SERVER") or os.environ.get("BATON_DB")):
        log(f"baton {what}: skipped (no BATON_SERVER or BATON_DB; not run by `baton up`)")
        return False
    cli = os.environ.get("BATON_CLI") or shutil.which("baton")
    if not cli:
        log(f"baton {what}: skipped (no BATON_CLI and no `baton` on PATH)")
        return False
    try:
        done = subprocess.run([cli, *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        log(f"baton {what}: failed ({error}); continuing")
        return False
    message = (done.stdout.strip() or done.stderr.strip()).splitlines()
    if done.returncode != 0:
        log(f"baton {what}: exit {done.returncode}: {' '.join(message)[:300]}; continuing")
        return False
    log(f"baton {what}: {' '.join(message)[:300]}")
    return True


# --------------------------------------------------------------------------
# Pipeline duration (the lecture's shared `emit_metric("pipeline.duration")`)
# --------------------------------------------------------------------------

def _marker() -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id())
    return var_dir() / "metrics" / "run_starts" / pipeline_name() / f"{safe}.start"


def _mark_run_start() -> None:
    """The first task of a run to start records the run's start time."""
    marker = _marker()
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(str(time.time()))


def report_pipeline_duration(owner: str) -> float:
    """Report the run's duration so far: the lecture's shared
    `emit_metric("pipeline.duration", duration, tags={"pipeline", "owner"})`.

    Call from a pipeline's last task.  The value goes to Baton's metrics
    (`baton metrics emit`, shown by `baton metrics query pipeline.duration`
    and the web UI's /dashboard) and is appended to
    var/metrics/pipeline_duration.jsonl.  Baton also records its own
    pipeline.duration per run; those points carry an extra `state` tag, so
    the two are separate series and nothing is counted twice.
    """
    marker = _marker()
    try:
        started = float(marker.read_text())
    except (OSError, ValueError):
        started = time.time()
    duration = round(time.time() - started, 3)
    log(f"pipeline.duration pipeline={pipeline_name()} owner={owner} "
        f"run={run_id()} duration={duration:.2f}s")

    metrics = var_dir() / "metrics" / "pipeline_duration.jsonl"
    with locked(metrics):  # all four pipelines append to this file
        lines = metrics.read_text().splitlines() if metrics.exists() else []
        # One line per run: a re-run of the same run replaces its line.
        lines = [ln for ln in lines
                 if ln.strip() and json.loads(ln).get("run_id") != run_id()]
        lines.append(json.dumps({
            "metric": "pipeline.duration", "value": duration, "unit": "s",
            "tags": {"pipeline": pipeline_name(), "owner": owner},
            "run_id": run_id(), "logical_date": logical_date(), "at": now_iso(),
        }, sort_keys=True))
        atomic_write_text(metrics, "\n".join(lines[-1000:]) + "\n")
    baton_cli("metrics", "emit", "pipeline.duration", str(duration),
              "--tag", f"pipeline={pipeline_name()}", "--tag", f"owner={owner}")

    # Keep only recent start markers.
    starts = sorted(marker.parent.glob("*.start"), key=lambda p: p.stat().st_mtime)
    for old in starts[:-50]:
        old.unlink(missing_ok=True)
    return duration

"""Shared by the Python-SDK versions of the example pipelines (pipelines/*_py.py).

They do the work of the YAML versions on the same bundled sample data, reusing their cleaning,
feature and model code, but keep their state under var/py/ and hand off through their own
datasets (clean_customers_py, customer_features_py) and event (data.customers_py.updated), so
both versions run side by side in one Baton without touching each other's files.
"""

import hashlib
import json
import time
from pathlib import Path

import baton_task as bt
from baton import emit_metric, get_context

EXAMPLES_DIR = bt.EXAMPLES_DIR
DATA_DIR = bt.DATA_DIR
MODEL_NAME = "churn"


def var() -> Path:
    path = bt.var_dir() / "py"
    path.mkdir(parents=True, exist_ok=True)
    return path


def warehouse_path() -> Path:
    return var() / "warehouse" / "warehouse.sqlite"


def catalog_path() -> Path:
    return var() / "catalog" / "catalog.json"



def partition_dir(*parts) -> Path:
    """A folder for this run's files, keyed by the logical date (a re-run replaces it)."""
    path = var().joinpath(*parts, bt.partition_key())
    path.mkdir(parents=True, exist_ok=True)
    return path


def begin() -> None:
    """The task's header line; the run's first task also records when the run started."""
    bt.begin()


def report_duration(owner: str) -> float:
    """The lecture's shared monitoring: the run's duration so far as pipeline.duration, tagged
    with the pipeline and the owning team (Baton adds its own points, with a state tag)."""
    context = get_context()
    safe = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in str(context.run_id))
    marker = bt.var_dir() / "metrics" / "run_starts" / str(context.pipeline) / f"{safe}.start"
    try:
        started = float(marker.read_text())
    except (OSError, ValueError):
        started = time.time()
    duration = round(time.time() - started, 3)
    emit_metric("pipeline.duration", duration, tags={"pipeline": context.pipeline, "owner": owner})
    bt.log(f"pipeline.duration pipeline={context.pipeline} owner={owner} duration={duration:.2f}s")
    return duration


def split_of(customer_id: str, test_percent: int = 25) -> str:
    """A stable train/test split by customer id."""
    bucket = int(hashlib.sha256(customer_id.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < test_percent else "train"


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def atomic_write_json(path: Path, value) -> None:
    bt.atomic_write_json(Path(path), value)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

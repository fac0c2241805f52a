"""The deployment state file, var/deployments/churn/state.json:

    {"production": {"version": 2, "artifact_dir": ..., "traffic_percent": 100, ...} | null,
     "canary":     {"version": 3, "artifact_dir": ..., "traffic_percent": 10, ...} | null,
     "history":    [{"action": "deploy_canary", "version": 3, "logical_date": ..., ...}, ...]}

Each history entry is keyed by (logical_date, action): re-running a run for
the same logical date replaces its entries instead of adding new ones.
"""

import contextlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402

EMPTY = {"production": None, "canary": None, "history": []}


@contextlib.contextmanager
def state():
    """Lock, load, let the caller change, then atomically save the state."""
    path = contracts.deployments_state_path()
    with bt.locked(path):
        current = json.loads(path.read_text()) if path.exists() else json.loads(json.dumps(EMPTY))
        yield current
        bt.atomic_write_json(path, current)


def record(current: dict, action: str, **details) -> dict:
    entry = dict(details, action=action, logical_date=bt.logical_date(), run_id=bt.run_id(),
                 at=bt.now_iso())
    history = [h for h in current["history"]
               if (h.get("logical_date"), h.get("action")) != (entry["logical_date"], action)]
    history.append(entry)
    current["history"] = history[-200:]
    return entry

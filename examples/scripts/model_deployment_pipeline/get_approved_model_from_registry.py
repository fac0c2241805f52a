#!/usr/bin/env python3
"""Fetch the latest approved model from the model registry.

Reads var/registry/churn/approved.json (written by model_training_flow's
register_model) and checks the model file is intact (sha256).  If nothing has
been approved yet - e.g. on first start, while training is still running -
the task fails with a clear message and Baton retries it.
"""

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402


def main():
    bt.begin()
    registry = contracts.registry_dir()
    approval = registry / "approved.json"
    if not approval.is_file():
        bt.fail(f"no approved {contracts.MODEL_NAME} model in the registry yet ({approval}): "
                f"run model_training_flow first (attempt {bt.attempt()})")
    approved = json.loads(approval.read_text())
    model_path = registry / approved["model_path"]
    if not model_path.is_file():
        bt.fail(f"approved model v{approved['version']} is missing: {model_path}")
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if digest != approved["model_sha256"]:
        bt.fail(f"approved model v{approved['version']} is corrupt: sha256 {digest} "
                f"!= {approved['model_sha256']}")
    metadata = json.loads((registry / approved["metadata_path"]).read_text())

    bt.log(f"approved model: {contracts.MODEL_NAME} v{approved['version']} "
           f"({metadata['candidate']}, {metadata['algorithm']}), approved {approved['approved_at']} "
           f"because {approved['reason']}")
    bt.write_output({
        "model_name": contracts.MODEL_NAME,
        "version": approved["version"],
        "model_path": str(model_path),
        "model_sha256": digest,
        "algorithm": metadata["algorithm"],
        "metrics": approved["metrics"],
        "approved_at": approved["approved_at"],
        "trained_by_run": metadata["source"]["run_id"],
    })


if __name__ == "__main__":
    main()

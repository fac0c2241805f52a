#!/usr/bin/env python3
"""Fetch the approved model from Baton's model registry.

    python3 get_approved_model_from_registry.py --version {{ models.churn.champion.version }}

The pipeline names the version through a template that Baton resolves from the registry when the
task is about to run (the version holding the `champion` alias, i.e. approved for deployment), so
the whole run deploys that one version even if another is approved meanwhile. If nothing is
approved yet - e.g. on first start, while training still runs - the task cannot start, says so,
and Baton retries it. The version's files are downloaded through the artifact API into
var/deployments/models/churn-vN and checked.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import registry  # noqa: E402


def main():
    bt.begin()
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", type=int, help="the registry version to deploy (default: the approved one)")
    version_number = parser.parse_args().version
    sdk = registry.baton
    if version_number is None:
        try:
            version = sdk.get_approved_model_from_registry(registry.MODEL_NAME)
        except sdk.ModelNotApproved as error:
            bt.fail(f"{error.message} (attempt {bt.attempt()})")
    else:
        version = sdk.get_model_version(registry.MODEL_NAME, version_number)
    folder = bt.var_dir() / "deployments" / "models" / f"{registry.MODEL_NAME}-v{version['version']}"
    sdk.download_artifacts(version["artifact_uri"], folder)
    model_path = folder / "model.json"
    if not model_path.is_file():
        bt.fail(f"version {version['version']} has no model.json in its artifacts ({version['artifact_uri']})")
    model = json.loads(model_path.read_text())
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    bt.log(f"approved model: {registry.MODEL_NAME} v{version['version']} ({model.get('name')}, {model.get('algorithm')}), "
           f"aliases {version.get('aliases')}, from experiment run {version.get('run_id')}")
    bt.write_output({
        "model_name": registry.MODEL_NAME,
        "version": version["version"],
        "model_path": str(model_path),
        "model_sha256": digest,
        "algorithm": model.get("algorithm"),
        "metrics": model.get("metrics", {}),
        "approved": version.get("approved", False),
        "tracking_run_id": version.get("run_id"),
        "trained_by_run": version.get("pipeline_run_id"),
    })


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Build the serving artifact (our stand-in for a container image).

An artifact is a directory under var/serving/artifacts/ holding everything
needed to serve the model - nothing else is imported at run time:

    model.json       the approved model, copied from the registry
    baseline.json    its drift baseline, when the trainer recorded one
    churn_model.py   the inference code (scripts/common/churn_model.py)
    serve.py         the HTTP server (serving/serve.py), as a deployment's replica runs it
    Dockerfile       how to turn the directory into an image, if you want one
    manifest.json    model version, per-file sha256 and the content hash

run_integration_tests starts its serve.py like Baton starts a replica.

The directory is named after the content hash (like an image digest), so
building the same model twice yields the same artifact and is a no-op.
"""

import hashlib
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402

SOURCES = {
    "churn_model.py": HERE.parent / "common" / "churn_model.py",
    "serve.py": HERE / "serving" / "serve.py",
    "Dockerfile": HERE / "serving" / "Dockerfile",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    bt.begin()
    model = bt.require_input("get_approved_model_from_registry")
    version = model["version"]

    files = dict(SOURCES, **{"model.json": Path(model["model_path"])})
    baseline = Path(model["model_path"]).with_name("baseline.json")
    if baseline.is_file():
        files["baseline.json"] = baseline
    digests = {name: sha256(path) for name, path in sorted(files.items())}
    content_hash = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()
    name = f"{contracts.MODEL_NAME}-v{version}-{content_hash[:12]}"
    artifact = bt.var_dir() / "serving" / "artifacts" / name

    if (artifact / "manifest.json").is_file():
        bt.log(f"artifact {name} already built (same content hash); reusing it")
    else:
        tmp = bt.temp_dir_for(artifact)
        for fname, src in files.items():
            shutil.copyfile(src, tmp / fname)
        (tmp / "serve.py").chmod(0o755)
        bt.atomic_write_json(tmp / "manifest.json", {
            "image": f"{contracts.MODEL_NAME}-serving:v{version}-{content_hash[:12]}",
            "model_name": contracts.MODEL_NAME,
            "model_version": version,
            "model_sha256": model["model_sha256"],
            "files": digests,
            "content_hash": content_hash,
            "built_at": bt.now_iso(),
            "built_by_run": bt.run_id(),
        })
        bt.replace_dir(tmp, artifact)
        bt.log(f"built artifact {name}: {', '.join(sorted(files))} + manifest.json")

    bt.write_output({
        "artifact_dir": str(artifact),
        "image": f"{contracts.MODEL_NAME}-serving:v{version}-{content_hash[:12]}",
        "content_hash": content_hash,
        "model_version": version,
    })


if __name__ == "__main__":
    main()

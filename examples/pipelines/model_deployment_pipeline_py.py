"""The lecture's MLOps pipeline, written with Baton's Python SDK.

`model_deployment_pipeline()` at the bottom is the lecture's code; the tasks above it fill in
its helpers like model_deployment_pipeline.yaml does: take the approved churn model from the
model registry (`churn_py`, alias `champion`, approved by model_training_flow_py), build a serving artifact and run
integration tests against it, send it a canary share of the traffic, monitor it on the labelled
holdout sample, then promote it or roll it back.

The `if validate_metrics(metrics):` in the lecture's code becomes two tasks with `when:`
conditions on validate_metrics' result: exactly one of deploy_full and rollback runs. Try the
rollback branch with `baton trigger model_deployment_pipeline_py --param force_rollback=true`.
"""

import csv
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLES / "scripts" / "common"))

import baton_task as bt  # noqa: E402
import churn_model  # noqa: E402
import sdk_example as ex  # noqa: E402
import baton  # noqa: E402
from baton import dag, get_context, task  # noqa: E402

# The model model_training_flow_py registers (the YAML pipelines use `churn`).
REGISTERED_MODEL = "churn_py"

SERVING = EXAMPLES / "scripts" / "model_deployment_pipeline" / "serving"
INTEGRATION_ROWS = ex.DATA_DIR / "integration_test_rows.jsonl"
HOLDOUT = ex.DATA_DIR / "holdout.csv"


def _record(action, **details):
    """The deployment state (what serves production, what is in canary) and its history."""
    path = ex.deployments_state_path()
    with bt.locked(path):
        state = ex.read_json(path, {"production": None, "canary": None, "history": []})
        if action == "canary":
            state["canary"] = details
        elif action == "promote":
            state["production"], state["canary"] = details, None
        elif action == "rollback":
            state["canary"] = None
        state["history"] = (state["history"] + [dict(details, action=action, at=bt.now_iso())])[-50:]
        ex.atomic_write_json(path, state)
    return state


# On the first start training may still be running: retry (5s, 10s, 20s, ...) until a model
# is approved.
@task(retries=6, retry_delay="5s", timeout="1m")
def get_approved_model_from_registry():
    ex.begin()
    # The version of `churn_py` holding the alias `champion` in Baton's model registry, with its
    # files downloaded through the artifact API. Raises ModelNotApproved (and the task retries)
    # while nothing is approved.
    approved = baton.get_approved_model_from_registry(REGISTERED_MODEL)
    baton.download_artifacts(approved["artifact_uri"], ex.var() / "deployments" / "models" / f"v{approved['version']}")
    approved["local_path"] = str(ex.var() / "deployments" / "models" / f"v{approved['version']}")
    model_path = Path(approved["local_path"]) / "model.json"
    print(f"approved model: {REGISTERED_MODEL} v{approved['version']} (run {approved.get('run_id')})")
    return {"version": approved["version"], "model_path": str(model_path), "model_sha256": ex.sha256(model_path)}


@task(timeout="2m")
def build_serving_container(model):
    ex.begin()
    artifact = ex.var() / "serving" / "artifacts" / f"{ex.MODEL_NAME}-v{model['version']}-{model['model_sha256'][:12]}"
    if not (artifact / "manifest.json").is_file():
        tmp = bt.temp_dir_for(artifact)
        shutil.copyfile(SERVING / "predict.py", tmp / "predict.py")
        shutil.copyfile(EXAMPLES / "scripts" / "common" / "churn_model.py", tmp / "churn_model.py")
        shutil.copyfile(model["model_path"], tmp / "model.json")
        ex.atomic_write_json(tmp / "manifest.json", {
            "image": f"{ex.MODEL_NAME}-serving:v{model['version']}", "model_name": ex.MODEL_NAME,
            "model_version": model["version"], "model_sha256": model["model_sha256"],
            "content_hash": model["model_sha256"], "built_at": bt.now_iso()})
        bt.replace_dir(tmp, artifact)
    print(f"serving artifact {artifact.name}")
    return {"artifact_dir": str(artifact), "version": model["version"]}


def _predict(artifact, stdin, *args):
    done = subprocess.run([sys.executable, str(Path(artifact) / "predict.py"), *args], input=stdin,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"predict.py exited with {done.returncode}: {done.stderr.strip()}")
    return done.stdout


@task(timeout="2m")
def run_integration_tests(container):
    ex.begin()
    health = json.loads(_predict(container["artifact_dir"], "", "--health"))
    rows_text = INTEGRATION_ROWS.read_text()
    predictions = [json.loads(line) for line in _predict(container["artifact_dir"], rows_text).splitlines()]
    by_id = {p["customer_id"]: p.get("churn_probability", -1) for p in predictions}
    checks = {
        "health reports the built version": health.get("model_version") == container["version"],
        "one prediction per row": len(predictions) == len([line for line in rows_text.splitlines() if line.strip()]),
        "no scoring errors": not any("error" in p for p in predictions),
        "churner scores above an active customer": by_id.get("IT-typical-churner", -1) > by_id.get("IT-typical-active", -1),
    }
    for name, passed in checks.items():
        print(f"  [{'PASS' if passed else 'FAIL'}] {name}")
    failed = [name for name, passed in checks.items() if not passed]
    if failed:
        raise AssertionError(f"{len(failed)} integration test(s) failed: {'; '.join(failed)}")


@task(timeout="1m")
def deploy_canary(container, traffic_percent):
    ex.begin()
    _record("canary", version=container["version"], artifact_dir=container["artifact_dir"],
            traffic_percent=traffic_percent)
    print(f"canary: v{container['version']} receives {traffic_percent}% of the traffic")


@task(timeout="5m")
def monitor_canary(duration_hours):
    """Scores the labelled holdout sample with the canary (standing in for `duration_hours` of
    live traffic)."""
    ex.begin()
    canary = ex.read_json(ex.deployments_state_path(), {}).get("canary")
    if not canary:
        raise LookupError("no canary is deployed")
    model = churn_model.load_model(Path(canary["artifact_dir"]) / "model.json")
    with open(HOLDOUT, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    latencies, errors, correct = [], 0, 0
    for row in rows:
        started = time.perf_counter()
        try:
            result = churn_model.predict(model, row)
            correct += int(result["churn"] == (row["churned"] == "1"))
        except ValueError:
            errors += 1
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    metrics = {"version": canary["version"], "requests": len(rows), "error_rate": round(errors / len(rows), 4),
               "accuracy": round(correct / max(1, len(rows) - errors), 4),
               "latency_ms_p99": round(latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)], 4),
               "window_hours": duration_hours}
    print(f"canary v{canary['version']}: accuracy={metrics['accuracy']:.3f} error_rate={metrics['error_rate']:.2%} "
          f"p99={metrics['latency_ms_p99']:.3f}ms over {len(rows)} requests")
    return metrics


@task(timeout="1m")
def validate_metrics(metrics):
    """True when the canary may be promoted (a bool: the pipeline's `if` tests it)."""
    ex.begin()
    params = get_context().params
    checks = {
        f"accuracy {metrics['accuracy']} >= {params['min_accuracy']}": metrics["accuracy"] >= params["min_accuracy"],
        f"error rate {metrics['error_rate']} <= 0.01": metrics["error_rate"] <= 0.01,
        f"p99 latency {metrics['latency_ms_p99']}ms <= 50ms": metrics["latency_ms_p99"] <= 50,
        "force_rollback is off": not params["force_rollback"],
    }
    for name, passed in checks.items():
        print(f"  [{'PASS' if passed else 'FAIL'}] {name}")
    return all(checks.values())


@task(timeout="1m")
def deploy_full(container):
    ex.begin()
    _record("promote", version=container["version"], artifact_dir=container["artifact_dir"])
    print(f"promoted v{container['version']} to 100% of the traffic")
    ex.report_duration(owner="mlops")


@task(timeout="1m")
def rollback():
    ex.begin()
    state = _record("rollback")
    production = state.get("production")
    print("rolled back the canary; production stays on "
          + (f"v{production['version']}" if production else "nothing (no earlier promotion)"))
    ex.report_duration(owner="mlops")


# MLOps Pipeline
@dag(schedule="@daily", owner="mlops", params={"min_accuracy": 0.6, "force_rollback": False})
def model_deployment_pipeline():
    # Get latest approved model
    model = get_approved_model_from_registry()

    # Build and test container
    container = build_serving_container(model)
    run_integration_tests(container)

    # Deploy with canary
    deploy_canary(container, traffic_percent=10)

    # Monitor and validate
    metrics = monitor_canary(duration_hours=2)

    # Full deployment if successful
    if validate_metrics(metrics):
        deploy_full(container)
    else:
        rollback()

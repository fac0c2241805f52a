"""The lecture's MLOps pipeline, written with Baton's Python SDK.

`model_deployment_pipeline()` at the bottom is the lecture's code; the tasks above it fill in
its helpers like model_deployment_pipeline.yaml does: take the approved churn model from the
model registry (`churn_py`, alias `champion`, approved by model_training_flow_py), build a serving
artifact and integration-test it over HTTP, then deploy it for real to the deployment `churn_py`
(deployments.yaml) with the SDK's deployment helpers: a canary at 10 % of the traffic through
Baton's gateway, watched on live requests (`params.monitor_seconds` stand in for the lecture's
two hours), then promoted or rolled back.

The `if validate_metrics(metrics):` in the lecture's code becomes two tasks with `when:`
conditions on validate_metrics' result: exactly one of deploy_full and rollback runs. Try the
rollback branch with `baton trigger model_deployment_pipeline_py --param force_rollback=true`.
"""

import shutil
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLES / "scripts" / "common"))
sys.path.insert(0, str(EXAMPLES / "scripts" / "model_deployment_pipeline"))

import baton_task as bt  # noqa: E402
import sdk_example as ex  # noqa: E402
import serving_checks  # noqa: E402
import traffic  # noqa: E402
import baton  # noqa: E402
from baton import dag, get_context, task  # noqa: E402

# The model model_training_flow_py registers (the YAML pipelines use `churn`), and its deployment.
REGISTERED_MODEL = "churn_py"
DEPLOYMENT = "churn_py"

SERVING = EXAMPLES / "scripts" / "model_deployment_pipeline" / "serving"


def _version(part):
    return str(part["version"]) if part and part.get("version") is not None else None


# On the first start training may still be running: retry (5s, 10s, 20s, ...) until a model
# is approved.
@task(retries=6, retry_delay="5s", timeout="1m")
def get_approved_model_from_registry():
    ex.begin()
    # The version of `churn_py` holding the alias `champion` in Baton's model registry, with its
    # files downloaded through the artifact API. Raises ModelNotApproved (and the task retries)
    # while nothing is approved.
    approved = baton.get_approved_model_from_registry(REGISTERED_MODEL)
    folder = ex.var() / "deployments" / "models" / f"v{approved['version']}"
    baton.download_artifacts(approved["artifact_uri"], folder)
    model_path = folder / "model.json"
    print(f"approved model: {REGISTERED_MODEL} v{approved['version']} (run {approved.get('run_id')})")
    return {"version": approved["version"], "model_path": str(model_path), "model_sha256": ex.sha256(model_path)}


@task(timeout="2m")
def build_serving_container(model):
    ex.begin()
    artifact = ex.var() / "serving" / "artifacts" / f"{ex.MODEL_NAME}-v{model['version']}-{model['model_sha256'][:12]}"
    if not (artifact / "manifest.json").is_file():
        tmp = bt.temp_dir_for(artifact)
        shutil.copyfile(SERVING / "serve.py", tmp / "serve.py")
        shutil.copyfile(EXAMPLES / "scripts" / "common" / "churn_model.py", tmp / "churn_model.py")
        shutil.copyfile(model["model_path"], tmp / "model.json")
        baseline = Path(model["model_path"]).with_name("baseline.json")
        if baseline.is_file():
            shutil.copyfile(baseline, tmp / "baseline.json")
        ex.atomic_write_json(tmp / "manifest.json", {
            "image": f"{ex.MODEL_NAME}-serving:v{model['version']}", "model_name": ex.MODEL_NAME,
            "model_version": model["version"], "model_sha256": model["model_sha256"],
            "content_hash": model["model_sha256"], "built_at": bt.now_iso()})
        bt.replace_dir(tmp, artifact)
    print(f"serving artifact {artifact.name}")
    return {"artifact_dir": str(artifact), "version": model["version"]}


@task(timeout="2m")
def run_integration_tests(container):
    """serve.py of the artifact, started like a deployment's replica, tested over HTTP."""
    ex.begin()
    online = serving_checks.online_customer() if get_context().server else None
    with serving_checks.running_server(container["artifact_dir"], container["version"]) as url:
        results = serving_checks.run_checks(url, container["version"], online=online)
    failed = [result["check"] for result in results if not result["passed"]]
    if failed:
        raise AssertionError(f"{len(failed)} integration test(s) failed: {'; '.join(failed)}")


@task(timeout="3m")
def deploy_canary(container, traffic_percent):
    ex.begin()
    version = str(container["version"])
    status = baton.deployment_status(DEPLOYMENT)
    stable, canary = _version(status.get("stable")), _version(status.get("canary"))
    if canary and canary != version:
        print(f"rolling back the leftover canary v{canary} first")
        baton.rollback(DEPLOYMENT, reason=f"superseded by a canary of v{version}")
        canary = None
    if stable == version and canary is None:
        print(f"{DEPLOYMENT}: v{version} already is the stable version; nothing to deploy")
        return
    if canary != version:
        try:
            baton.deploy_canary(DEPLOYMENT, model=f"models:/{REGISTERED_MODEL}/{version}",
                                traffic_percent=traffic_percent, timeout=120)
        except baton.CanaryRolledBack as error:
            # Not a failure of this task: monitor_canary and validate_metrics see it.
            print(f"the canary was rolled back while starting: {error.message}")
            return
    print(f"{DEPLOYMENT}: v{version} " + (f"is the first deployment and serves all traffic" if stable is None
                                         else f"takes {traffic_percent}% of the traffic, stable v{stable} the rest"))


@task(timeout="10m")
def monitor_canary(duration_hours):
    """Watches the deployment on live traffic through the gateway for params.monitor_seconds
    (standing in for `duration_hours`), and adds each version's accuracy on labelled customers."""
    ex.begin()
    seconds = float(get_context().params.get("monitor_seconds", 20))
    print(f"watching {DEPLOYMENT} for {seconds:g}s (the lecture's {duration_hours}h) with live traffic")
    with traffic.Traffic(DEPLOYMENT, rate_per_second=20) as load:
        try:
            metrics = baton.monitor_canary(DEPLOYMENT, duration_seconds=seconds, interval_seconds=2)
        except baton.CanaryRolledBack as error:
            print(error.message)
            return {"rolled_back": True, "reason": error.message, "canary": None}
    summary = load.summary()
    for role in ("canary", "stable"):
        if metrics.get(role):
            metrics[role]["accuracy"] = (summary["versions"].get(metrics[role]["version"]) or {}).get("accuracy")
    if metrics["canary"] is None:  # a first deployment: the version under test is stable
        metrics["canary"] = metrics["stable"]
    figures = metrics["canary"] or {}
    print(f"v{figures.get('version')}: {figures.get('requests')} requests, error_rate={figures.get('error_rate')}, "
          f"p99={figures.get('p99_ms')}ms, accuracy={figures.get('accuracy')}")
    return dict(metrics, rolled_back=False, traffic=summary)


@task(timeout="1m")
def validate_metrics(metrics):
    """True when the canary may be promoted (a bool: the pipeline's `if` tests it)."""
    ex.begin()
    params = get_context().params
    if metrics.get("rolled_back"):
        print(f"  [FAIL] {metrics['reason']}")
        return False
    thresholds = {"max_error_rate": 0.01, "max_p99_latency_ms": 100, "min_requests": 20,
                  "min_accuracy": params["min_accuracy"]}
    if (metrics.get("canary") or {}).get("accuracy") is None:
        # Too few labelled answers from the canary in this watch to judge its accuracy.
        print(f"  [SKIP] accuracy: fewer than {traffic.MIN_LABELLED} labelled answers from the canary")
        del thresholds["min_accuracy"]
    result = baton.validate_metrics(metrics, **thresholds)
    for check in result.checks:
        print(f"  [{'PASS' if check.passed else 'FAIL'}] {check.detail}")
    print(f"  [{'FAIL' if params['force_rollback'] else 'PASS'}] force_rollback is {'on' if params['force_rollback'] else 'off'}")
    return bool(result) and not params["force_rollback"]


@task(timeout="1m")
def deploy_full(container):
    ex.begin()
    version = str(container["version"])
    if _version(baton.deployment_status(DEPLOYMENT).get("canary")) == version:
        baton.deploy_full(DEPLOYMENT, reason="validate_metrics passed")
    stable = _version(baton.deployment_status(DEPLOYMENT).get("stable"))
    if stable != version:
        raise RuntimeError(f"{DEPLOYMENT}: v{version} is not stable after promotion (stable is v{stable})")
    print(f"{DEPLOYMENT}: v{version} serves 100% of the traffic")
    ex.report_duration(owner="mlops")


@task(timeout="1m")
def rollback():
    ex.begin()
    status = baton.deployment_status(DEPLOYMENT)
    canary = _version(status.get("canary"))
    if canary is not None:
        baton.rollback(DEPLOYMENT, reason="validate_metrics failed")
        print(f"rolled back canary v{canary}")
    else:
        print("no canary left to roll back")
    stable = _version(status.get("stable"))
    print(f"stable stays on v{stable}" if stable else "no stable version yet")
    ex.report_duration(owner="mlops")


# MLOps Pipeline
@dag(schedule="@daily", owner="mlops", params={"min_accuracy": 0.6, "force_rollback": False, "monitor_seconds": 20})
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

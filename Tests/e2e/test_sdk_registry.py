"""The Python SDK's tracking and registry helpers against the real `baton up`.

`start_run`, `register_model`, `get_approved_model_from_registry` and `download_artifacts` are
standard-library code that speaks MLflow's REST API and Baton's model API; these tests run them
in a task (so MLFLOW_TRACKING_URI comes from Baton and the lineage is checked) and from outside.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[2]
SDK = REPO / "sdk" / "python"

TRAINER = textwrap.dedent('''
    import json, pathlib, baton
    pathlib.Path("model").mkdir(exist_ok=True)
    pathlib.Path("model/model.json").write_text(json.dumps({"weights": [1, 2, 3]}))
    with baton.start_run("churn_training", run_name="xgboost", params={"lr": 0.1}, tags={"team": "ml"}) as run:
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            run.log_metric("loss", loss, step=step)
        run.log_metrics({"f1": 0.81})
        run.log_artifacts("model", artifact_path="model")
    version = baton.register_model("churn", run_id=run.run_id, artifact_path="model", approve=True, note="f1 0.81")
    print("REGISTERED", json.dumps(version))
''')


def run_sdk(code, env):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(SDK), **env})
    return done


def test_a_task_trains_registers_and_approves_and_outside_code_gets_the_approved_files(baton_server, tmp_path):
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "trainer.py").write_text(TRAINER)
    (pipelines / "train.yaml").write_text(textwrap.dedent(f'''
        name: train
        tasks:
          fit:
            run: {sys.executable} trainer.py
            env:
              PYTHONPATH: {SDK}
    '''))
    server = baton_server(pipelines)
    run = server.post("/api/v1/runs", {"pipeline": "train"}).json()
    finished = server.wait_for_run(run["id"])
    log = server.get(f"/api/v1/runs/{run['id']}/tasks/fit/logs").json()["content"]
    assert finished["state"] == "success", log
    registered = json.loads(log.split("REGISTERED ", 1)[1].splitlines()[0])
    assert registered["version"] == 1 and registered["approved"] is True
    assert registered["pipeline_run_id"] == run["id"] and registered["task"] == "fit"

    # The experiment run has the params, metric history, tags and lineage.
    experiment = server.get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=churn_training").json()["experiment"]
    runs = server.post("/api/2.0/mlflow/runs/search",
                       {"experiment_ids": [experiment["experiment_id"]], "filter": "params.lr = '0.1'"}).json()["runs"]
    assert len(runs) == 1
    tags = {tag["key"]: tag["value"] for tag in runs[0]["data"]["tags"]}
    assert tags["baton.pipeline"] == "train" and tags["baton.run_id"] == str(run["id"]) and tags["baton.task"] == "fit"
    assert runs[0]["info"]["status"] == "FINISHED"
    history = server.get(f"/api/2.0/mlflow/metrics/get-history?run_id={runs[0]['info']['run_id']}&metric_key=loss").json()
    assert [point["value"] for point in history["metrics"]] == [0.9, 0.5, 0.3]

    # Outside Baton: the approved version with its files, and a clear error for a model nobody approved.
    destination = tmp_path / "download"
    done = run_sdk(textwrap.dedent(f'''
        import json, baton
        model = baton.get_approved_model_from_registry("churn", download_to={str(destination)!r})
        print(json.dumps(model))
        try:
            baton.get_approved_model_from_registry("fraud")
        except baton.ModelNotApproved as error:
            print("NOT APPROVED:", error)
    '''), {"BATON_SERVER": server.url, "MLFLOW_TRACKING_URI": server.url})
    assert done.returncode == 0, done.stderr
    approved = json.loads(done.stdout.splitlines()[0])
    assert approved["version"] == 1 and approved["aliases"] == ["champion"]
    assert json.loads((destination / "model.json").read_text()) == {"weights": [1, 2, 3]}
    assert "NOT APPROVED:" in done.stdout and "baton models approve fraud" in done.stdout


def test_register_model_without_a_server_says_what_to_set(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BATON_", "MLFLOW_"))}
    done = subprocess.run([sys.executable, "-c", "import baton; baton.register_model('churn', run_id='x')"],
                          capture_output=True, text=True, timeout=30, env={**env, "PYTHONPATH": str(SDK)})
    assert done.returncode != 0
    assert "MLFLOW_TRACKING_URI" in done.stderr and "BATON_SERVER" in done.stderr

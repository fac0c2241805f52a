"""Baton-specific, beyond MLflow compatibility: a pipeline task that uses the official `mlflow`
client without configuring it logs to the Baton server that runs it, and what it logs is linked
to the pipeline run (lineage): the MLflow run carries `baton.*` tags that MLflow search finds,
and the model version it registers names the pipeline run and task in `/api/v1/models`.

The task runs with the venv's python (`.venv-mlflow/`, from `scripts/install-deps.sh --test`);
the assertions use plain HTTP."""

import json
import os
import textwrap
import urllib.parse

import pytest

from conftest import write_pipelines
from test_mlflow_client import VENV_PYTHON, require_venv

TASK_SCRIPT = '''
import mlflow
import mlflow.pyfunc


class Double(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [2 * value for value in list(model_input)]


mlflow.set_experiment("lineage")
with mlflow.start_run(run_name="fit") as run:
    mlflow.log_param("lr", "0.1")
    mlflow.log_metric("accuracy", 0.93, step=1)
    info = mlflow.pyfunc.log_model(name="model", python_model=Double(), pip_requirements=["mlflow"],
                                   registered_model_name="lineage-model")
print("mlflow run", run.info.run_id, "model", info.model_id, "version", info.registered_model_version)
'''


def test_a_task_logs_to_its_server_and_its_model_version_names_the_pipeline_run(baton_server, tmp_path):
    require_venv()
    script = tmp_path / "train.py"
    script.write_text(TASK_SCRIPT)
    pipelines = write_pipelines(tmp_path / "pipelines", {
        "training": textwrap.dedent(f"""
            name: training
            tasks:
              train:
                run: "{VENV_PYTHON} {script}"
        """),
    })
    environment = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
        "TMPDIR": str(tmp_path),
    }
    for key in [key for key in os.environ if key.startswith("MLFLOW_TRACKING")]:
        environment[key] = ""  # the task must find its server by itself
    server = baton_server(pipelines, env=environment)
    created = server.post("/api/v1/runs", {"pipeline": "training"})
    assert created.status in (200, 201), created
    pipeline_run = created.json()["id"]
    finished = server.wait_for_run(pipeline_run, timeout=240)
    log = server.get(f"/api/v1/runs/{pipeline_run}/tasks/train/logs")
    assert finished["state"] == "success", f"{finished}\n{log.body[-4000:]!r}\n{server.log()[-3000:]}"

    experiment = server.get("/api/2.0/mlflow/experiments/get-by-name?" + urllib.parse.urlencode({"experiment_name": "lineage"}))
    assert experiment.status == 200, experiment
    experiment_id = experiment.json()["experiment"]["experiment_id"]
    found = server.post("/api/2.0/mlflow/runs/search", {
        "experiment_ids": [experiment_id], "filter": f"tags.baton.run_id = '{pipeline_run}'", "max_results": 10})
    assert found.status == 200, found
    runs = found.json().get("runs", [])
    assert len(runs) == 1, found
    tags = {tag["key"]: tag["value"] for tag in runs[0]["data"].get("tags", [])}
    assert (tags.get("baton.run_id"), tags.get("baton.task"), tags.get("baton.pipeline")) == (str(pipeline_run), "train", "training")
    assert {param["key"]: param["value"] for param in runs[0]["data"]["params"]} == {"lr": "0.1"}
    assert [(metric["key"], metric["value"], metric["step"]) for metric in runs[0]["data"]["metrics"]] == [("accuracy", 0.93, 1)]

    model = server.get("/api/v1/models/lineage-model")
    assert model.status == 200, model
    versions = model.json()["versions"]
    assert len(versions) == 1, model
    version = versions[0]
    assert (version["version"], version["run_id"]) == (1, runs[0]["info"]["run_id"]), version
    assert (version.get("pipeline_run_id"), version.get("task"), version.get("pipeline")) == (pipeline_run, "train", "training"), version

    # A run logged straight to the server, outside any task, is linked to no pipeline run.
    outside = server.post("/api/2.0/mlflow/runs/create", {"experiment_id": experiment_id, "run_name": "by hand"})
    assert outside.status == 200, outside
    outside_tags = {tag["key"] for tag in outside.json()["run"]["data"].get("tags", [])}
    assert not any(key.startswith("baton.") for key in outside_tags), outside
    again = server.post("/api/2.0/mlflow/runs/search", {
        "experiment_ids": [experiment_id], "filter": f"tags.baton.run_id = '{pipeline_run}'"})
    assert len(again.json().get("runs", [])) == 1, again

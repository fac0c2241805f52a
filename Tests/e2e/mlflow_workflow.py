"""Drives the official `mlflow` Python client through a whole tracking and registry workflow
against the server at `$MLFLOW_TRACKING_URI`, asserting every result.

Runs in the venv that has the pinned client (`.venv-mlflow/bin/python`), not in Debian's
interpreter: `Tests/e2e/test_mlflow_client.py` starts it in a subprocess, once against
`baton up` and, with BATON_MLFLOW_E2E_REFERENCE=1, once against a real `mlflow server`, so the
expectations here are checked against real MLflow behaviour.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 .venv-mlflow/bin/python Tests/e2e/mlflow_workflow.py --report out.json

The workflow is a list of steps; a step stops at its first failed check and the next steps still
run (a later step that needs an earlier one's result fails with a clear reason). Every name it
creates carries a fresh suffix, so it can run again on the same server. It prints one line per
step and writes a JSON report: {"steps": [{"name", "ok", "checks" (passed), "error", "seconds"}], ...}.
Exit status 0 when every step passed, 1 otherwise.
"""

import argparse
import json
import logging
import math
import os
import pathlib
import sys
import tempfile
import time
import traceback
import uuid
import warnings

import mlflow
import mlflow.pyfunc
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

warnings.filterwarnings("ignore")
logging.getLogger("mlflow").setLevel(logging.WARNING)


class CheckFailed(AssertionError):
    pass


class Workflow:
    def __init__(self, workdir):
        self.client = MlflowClient()
        self.workdir = pathlib.Path(workdir)
        self.suffix = uuid.uuid4().hex[:10]
        self.state = {}
        self.checks = 0

    # -- checks -----------------------------------------------------------------------------

    def check(self, condition, message):
        if not condition:
            raise CheckFailed(message)
        self.checks += 1

    def equal(self, actual, expected, what):
        self.check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")

    def fails_with(self, code, action, what):
        """Runs `action`; it must raise MlflowException with error_code `code`."""
        try:
            result = action()
        except MlflowException as error:
            if error.error_code != code:
                raise CheckFailed(f"{what}: expected error {code}, got {error.error_code}: {error.message}") from error
            self.checks += 1
            return error
        raise CheckFailed(f"{what}: expected error {code}, but it succeeded and returned {result!r}")

    def need(self, key):
        if key not in self.state:
            raise CheckFailed(f"needs `{key}` from an earlier step that failed")
        return self.state[key]

    def name(self, prefix):
        return f"e2e-{prefix}-{self.suffix}"

    # -- steps --------------------------------------------------------------------------------

    def step_experiments(self):
        c = self.client
        name = self.name("exp")
        experiment = mlflow.set_experiment(name)
        self.check(experiment.experiment_id not in (None, "", "0"), f"set_experiment gave id {experiment.experiment_id!r}")
        self.equal(experiment.name, name, "set_experiment name")
        self.equal(experiment.lifecycle_stage, "active", "new experiment lifecycle_stage")
        self.equal(experiment.artifact_location, f"mlflow-artifacts:/{experiment.experiment_id}", "artifact_location")
        self.check(experiment.creation_time and experiment.creation_time > 1_600_000_000_000,
                   f"creation_time in ms: {experiment.creation_time!r}")
        experiment_id = experiment.experiment_id
        again = mlflow.set_experiment(name)
        self.equal(again.experiment_id, experiment_id, "set_experiment on an existing name returns the same id")
        by_name = c.get_experiment_by_name(name)
        self.check(by_name is not None, "get_experiment_by_name found nothing")
        self.equal(by_name.experiment_id, experiment_id, "get_experiment_by_name id")
        self.check(c.get_experiment_by_name(self.name("missing")) is None, "get_experiment_by_name of a missing name is None")
        self.fails_with("RESOURCE_ALREADY_EXISTS", lambda: c.create_experiment(name), "create_experiment with a taken name")
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.get_experiment("987654321"), "get_experiment of an unknown id")

        other_name = self.name("exp-other")
        other_id = c.create_experiment(other_name, tags={"team": "ml"})
        self.check(other_id != experiment_id, "create_experiment gives a new id")
        other = c.get_experiment(other_id)
        self.equal(other.name, other_name, "get_experiment name")
        self.equal(other.tags.get("team"), "ml", "tag given at creation")

        found = c.search_experiments(filter_string=f"name = '{name}'")
        self.equal([e.experiment_id for e in found], [experiment_id], "search_experiments by name")
        self.equal(c.search_experiments(filter_string=f"name = '{self.name('missing')}'"), [], "search_experiments of a missing name")

        c.set_experiment_tag(experiment_id, "owner", "e2e")
        self.equal(c.get_experiment(experiment_id).tags.get("owner"), "e2e", "set_experiment_tag")

        c.delete_experiment(other_id)
        self.equal(c.get_experiment(other_id).lifecycle_stage, "deleted", "lifecycle_stage after delete_experiment")
        self.equal(c.search_experiments(filter_string=f"name = '{other_name}'"), [], "a deleted experiment is not searched by default")
        deleted = c.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=f"name = '{other_name}'")
        self.equal([e.experiment_id for e in deleted], [other_id], "search_experiments DELETED_ONLY")
        c.restore_experiment(other_id)
        self.equal(c.get_experiment(other_id).lifecycle_stage, "active", "lifecycle_stage after restore_experiment")
        self.equal([e.experiment_id for e in c.search_experiments(filter_string=f"name = '{other_name}'")], [other_id],
                   "a restored experiment is searched again")
        self.state["experiment_id"] = experiment_id

    def step_runs(self):
        c = self.client
        experiment_id = self.need("experiment_id")
        with mlflow.start_run(run_name="first") as run:
            run_id = run.info.run_id
            self.check(len(run_id) == 32 and all(ch in "0123456789abcdef" for ch in run_id), f"run id is 32 hex: {run_id!r}")
            self.equal(run.info.experiment_id, experiment_id, "run experiment_id")
            self.equal(run.info.status, "RUNNING", "status of a started run")
            self.equal(run.info.run_name, "first", "run_name")
            self.equal(run.info.lifecycle_stage, "active", "run lifecycle_stage")
            self.check(run.info.artifact_uri.startswith("mlflow-artifacts:/") and run.info.artifact_uri.endswith(f"/{run_id}/artifacts"),
                       f"artifact_uri: {run.info.artifact_uri!r}")
            self.equal(mlflow.active_run().info.run_id, run_id, "active_run")
            fetched = c.get_run(run_id)
            self.equal(fetched.info.status, "RUNNING", "get_run status while running")
            self.equal(fetched.data.tags.get("mlflow.runName"), "first", "mlflow.runName tag")
            self.check(fetched.data.tags.get("mlflow.user"), f"mlflow.user tag is set: {fetched.data.tags}")
        finished = c.get_run(run_id)
        self.equal(finished.info.status, "FINISHED", "status after the with-block")
        self.check(finished.info.end_time is not None and finished.info.end_time >= finished.info.start_time,
                   f"end_time {finished.info.end_time} >= start_time {finished.info.start_time}")

        created = c.create_run(experiment_id, run_name="second", tags={"team": "ml"}, start_time=1_700_000_000_000)
        second_id = created.info.run_id
        self.equal(created.info.start_time, 1_700_000_000_000, "start_time given to create_run")
        self.equal(created.data.tags.get("team"), "ml", "tag given to create_run")
        c.update_run(second_id, status="SCHEDULED")
        self.equal(c.get_run(second_id).info.status, "SCHEDULED", "status after update_run")
        c.update_run(second_id, name="second-renamed")
        renamed = c.get_run(second_id)
        self.equal(renamed.info.run_name, "second-renamed", "run_name after update_run")
        self.equal(renamed.data.tags.get("mlflow.runName"), "second-renamed", "mlflow.runName after update_run")
        c.set_terminated(second_id, status="FAILED", end_time=1_700_000_005_000)
        failed = c.get_run(second_id).info
        self.equal(failed.status, "FAILED", "status after set_terminated")
        self.equal(failed.end_time, 1_700_000_005_000, "end_time given to set_terminated")

        c.delete_run(second_id)
        self.equal(c.get_run(second_id).info.lifecycle_stage, "deleted", "lifecycle_stage after delete_run")
        active = {r.info.run_id for r in c.search_runs([experiment_id])}
        self.check(second_id not in active and run_id in active, f"a deleted run is not searched by default: {active}")
        deleted = {r.info.run_id for r in c.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)}
        self.equal(deleted, {second_id}, "search_runs DELETED_ONLY")
        c.restore_run(second_id)
        self.equal(c.get_run(second_id).info.lifecycle_stage, "active", "lifecycle_stage after restore_run")
        self.equal({r.info.run_id for r in c.search_runs([experiment_id], run_view_type=ViewType.ALL)}, {run_id, second_id},
                   "search_runs ALL")

        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.get_run("0" * 32), "get_run of an unknown id")
        self.state["run_id"] = run_id

    def step_params_metrics_tags(self):
        c = self.client
        experiment_id = self.need("experiment_id")
        run = c.create_run(experiment_id, run_name="logging")
        run_id = run.info.run_id
        c.log_param(run_id, "lr", 0.1)
        c.log_param(run_id, "optimizer", "adam")
        c.log_param(run_id, "lr", "0.1")  # the same value again is fine
        self.fails_with("INVALID_PARAMETER_VALUE", lambda: c.log_param(run_id, "lr", "0.2"), "changing a logged param")
        self.equal(c.get_run(run_id).data.params, {"lr": "0.1", "optimizer": "adam"}, "params")

        base = 1_700_000_000_000
        for step, value in enumerate([0.9, 0.7, 0.5, 0.4]):
            c.log_metric(run_id, "loss", value, timestamp=base + step * 1000, step=step)
        # Logged out of order: the latest value is the one with the highest step, not the last written.
        c.log_metric(run_id, "loss", 0.1, timestamp=base + 10_000, step=10)
        c.log_metric(run_id, "loss", 0.3, timestamp=base + 20_000, step=5)
        history = c.get_metric_history(run_id, "loss")
        self.equal(sorted((m.step, m.value, m.timestamp) for m in history),
                   [(0, 0.9, base), (1, 0.7, base + 1000), (2, 0.5, base + 2000), (3, 0.4, base + 3000),
                    (5, 0.3, base + 20_000), (10, 0.1, base + 10_000)],
                   "get_metric_history (step, value, timestamp)")
        self.check(all(m.key == "loss" for m in history), "history keys")
        self.equal(c.get_metric_history(run_id, "absent"), [], "history of a metric never logged")
        c.log_metric(run_id, "accuracy", 0.5)  # timestamp and step defaulted by the client
        data = c.get_run(run_id).data
        self.equal(data.metrics, {"loss": 0.1, "accuracy": 0.5}, "latest metric values")

        c.set_tag(run_id, "team", "ml_engineering")
        c.set_tag(run_id, "team", "ml_platform")  # tags may change
        self.equal(c.get_run(run_id).data.tags.get("team"), "ml_platform", "set_tag overwrites")

        c.log_batch(
            run_id,
            metrics=[Metric("f1", 0.5 + i / 100, base + i, i) for i in range(5)] + [Metric("auc", 0.8, base, 0)],
            params=[Param("batch_size", "32"), Param("epochs", "5")],
            tags=[RunTag("stage", "batch"), RunTag("owner", "e2e")],
        )
        run = c.get_run(run_id)
        self.equal(run.data.params, {"lr": "0.1", "optimizer": "adam", "batch_size": "32", "epochs": "5"}, "params after log_batch")
        self.equal(run.data.metrics.get("f1"), 0.54, "latest f1 after log_batch")
        self.equal(run.data.metrics.get("auc"), 0.8, "auc after log_batch")
        self.equal((run.data.tags.get("stage"), run.data.tags.get("owner")), ("batch", "e2e"), "tags after log_batch")
        self.equal([(m.step, m.value) for m in sorted(c.get_metric_history(run_id, "f1"), key=lambda m: m.step)],
                   [(i, 0.5 + i / 100) for i in range(5)], "f1 history from log_batch")
        self.fails_with("INVALID_PARAMETER_VALUE", lambda: c.log_batch(run_id, params=[Param("epochs", "6")]),
                        "log_batch changing a logged param")

        # A diverged loss: NaN is kept as NaN; MLflow's SQL store clamps infinities to the largest
        # double, so either that or an infinity is accepted.
        c.log_metric(run_id, "diverged", float("nan"), timestamp=base, step=0)
        c.log_metric(run_id, "diverged", float("inf"), timestamp=base, step=1)
        c.log_metric(run_id, "diverged", float("-inf"), timestamp=base, step=2)
        values = [m.value for m in sorted(c.get_metric_history(run_id, "diverged"), key=lambda m: m.step)]
        self.check(len(values) == 3 and math.isnan(values[0]) and values[1] >= sys.float_info.max and values[2] <= -sys.float_info.max,
                   f"NaN, +inf and -inf metric values: {values}")
        self.check(c.get_run(run_id).data.metrics.get("diverged", 0) <= -sys.float_info.max, "latest value -inf")

        # More points than the client asks for in one page (25,000): it follows next_page_token.
        for batch in range(26):
            c.log_batch(run_id, metrics=[Metric("long", float(step), base + step, step) for step in range(batch * 1000, batch * 1000 + 1000)])
        long_history = c.get_metric_history(run_id, "long")
        self.equal(sorted(m.step for m in long_history), list(range(26_000)), "a 26,000-point history read through pages")
        self.check(all(m.value == float(m.step) for m in long_history), "values of the long history")

        with mlflow.start_run(run_id=run_id):
            mlflow.log_metrics({"m1": 1.0, "m2": 2.0}, step=3)
            mlflow.log_params({"p1": "a"})
            mlflow.set_tags({"t1": "x"})
        run = c.get_run(run_id)
        self.equal((run.data.metrics.get("m1"), run.data.metrics.get("m2"), run.data.params.get("p1"), run.data.tags.get("t1")),
                   (1.0, 2.0, "a", "x"), "fluent log_metrics / log_params / set_tags")
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.log_metric("f" * 32, "x", 1.0), "log_metric to an unknown run")

    def step_search_runs(self):
        c = self.client
        experiment_id = c.create_experiment(self.name("search"))
        base = 1_710_000_000_000
        specs = [
            # name, accuracy, lr, team, status
            ("a", 0.95, "0.1", "ml_engineering", "FINISHED"),
            ("b", 0.92, "0.1", "ml_engineering", "FAILED"),
            ("c", 0.85, "0.1", "ml_engineering", "FAILED"),
            ("d", 0.97, "0.01", "ml_engineering", "FAILED"),
            ("e", 0.99, "0.1", "research", "FAILED"),
            ("f", 0.93, "0.1", "ml_engineering", "FAILED"),
            ("g", 0.91, "0.1", "ml_engineering", "FAILED"),  # deleted below
        ]
        ids = {}
        for index, (name, accuracy, lr, team, status) in enumerate(specs):
            run = c.create_run(experiment_id, run_name=name, start_time=base + index * 1000, tags={"team": team})
            ids[name] = run.info.run_id
            c.log_metric(run.info.run_id, "accuracy", accuracy, timestamp=base, step=0)
            c.log_param(run.info.run_id, "lr", lr)
            c.set_terminated(run.info.run_id, status=status, end_time=base + index * 1000 + 500)
        c.delete_run(ids["g"])
        names = {run_id: name for name, run_id in ids.items()}

        def search(filter_string="", order_by=None, **kwargs):
            return [names[r.info.run_id] for r in c.search_runs([experiment_id], filter_string=filter_string, order_by=order_by, **kwargs)]

        self.equal(search(), ["f", "e", "d", "c", "b", "a"], "default order: start_time descending, deleted runs left out")
        self.equal(sorted(search("metrics.accuracy > 0.9")), ["a", "b", "d", "e", "f"], "metrics.accuracy > 0.9")
        self.equal(sorted(search("params.lr = '0.1'")), ["a", "b", "c", "e", "f"], "params.lr = '0.1'")
        self.equal(sorted(search("tags.team = 'ml_engineering'")), ["a", "b", "c", "d", "f"], "tags.team = 'ml_engineering'")
        self.equal(sorted(search("attributes.status = 'FAILED'")), ["b", "c", "d", "e", "f"], "attributes.status = 'FAILED'")
        combined = "metrics.accuracy > 0.9 AND params.lr = '0.1' AND tags.team = 'ml_engineering' AND attributes.status = 'FAILED'"
        self.equal(search(combined, order_by=["metrics.accuracy DESC"]), ["f", "b"], "four filters joined by AND, accuracy DESC")
        self.equal(search(order_by=["metrics.accuracy DESC"]), ["e", "d", "a", "f", "b", "c"], "order_by metrics.accuracy DESC")
        self.equal(search(order_by=["attributes.start_time ASC"]), ["a", "b", "c", "d", "e", "f"], "order_by attributes.start_time ASC")
        self.equal(search("metrics.accuracy > 0.999"), [], "a filter that matches nothing")
        self.equal(sorted(search("attributes.status = 'FAILED'", run_view_type=ViewType.ALL)), ["b", "c", "d", "e", "f", "g"],
                   "run_view_type ALL includes the deleted run")

        pages, token = [], None
        for _ in range(10):
            page = c.search_runs([experiment_id], order_by=["attributes.start_time ASC"], max_results=2, page_token=token)
            pages.append([names[r.info.run_id] for r in page])
            token = page.token
            if not token:
                break
        self.equal(pages, [["a", "b"], ["c", "d"], ["e", "f"]], "pages of max_results=2, start_time ASC")

        pages, token = [], None
        for _ in range(10):
            page = c.search_runs([experiment_id], filter_string="params.lr = '0.1'", order_by=["metrics.accuracy DESC"],
                                 max_results=3, page_token=token)
            pages.append([names[r.info.run_id] for r in page])
            token = page.token
            if not token:
                break
        self.equal([run for page in pages for run in page], ["e", "a", "f", "b", "c"], "filtered pages, accuracy DESC, max_results=3")
        self.equal(len(pages[0]), 3, "first filtered page is full")

        self.fails_with("INVALID_PARAMETER_VALUE", lambda: c.search_runs([experiment_id], filter_string="metrics.accuracy >>> 1"),
                        "search_runs with an unparsable filter")

    def step_more_tracking(self):
        """What users reach for next: experiment pages and renames, nested runs, run names in
        filters, tag deletion and the pandas search_runs."""
        c = self.client
        prefix = self.name("page")
        ids = [c.create_experiment(f"{prefix}-{index}") for index in range(5)]
        pages, token = [], None
        for _ in range(10):
            page = c.search_experiments(max_results=2, filter_string=f"name LIKE '{prefix}-%'", order_by=["name ASC"], page_token=token)
            pages.append([e.name.rsplit("-", 1)[1] for e in page])
            token = page.token
            if not token:
                break
        self.equal(pages, [["0", "1"], ["2", "3"], ["4"]], "search_experiments pages of max_results=2, name ASC, name LIKE")
        c.rename_experiment(ids[0], f"{prefix}-renamed")
        self.equal(c.get_experiment(ids[0]).name, f"{prefix}-renamed", "rename_experiment")
        self.check(c.get_experiment_by_name(f"{prefix}-0") is None, "the old experiment name is free after a rename")
        c.set_experiment_tag(ids[1], "k", "v")
        c.delete_experiment_tag(ids[1], "k")
        self.check("k" not in c.get_experiment(ids[1]).tags, "delete_experiment_tag")

        with mlflow.start_run(experiment_id=ids[1], run_name="parent") as parent:
            # A nested run goes to the active experiment, not its parent's, unless told.
            with mlflow.start_run(experiment_id=ids[1], run_name="child", nested=True) as child:
                mlflow.log_metric("score", 3.0)
        parent_id, child_id = parent.info.run_id, child.info.run_id
        self.equal(c.get_run(child_id).data.tags.get("mlflow.parentRunId"), parent_id, "a nested run names its parent")
        self.equal([r.info.run_id for r in c.search_runs([ids[1]], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")],
                   [child_id], "search_runs by tags.mlflow.parentRunId")
        self.equal([r.info.run_id for r in c.search_runs([ids[1]], filter_string="attributes.run_name = 'child'")], [child_id],
                   "search_runs by attributes.run_name")
        self.equal([r.info.run_id for r in c.search_runs([ids[1]], filter_string="attributes.run_name LIKE 'par%'")], [parent_id],
                   "search_runs by attributes.run_name LIKE")
        c.set_tag(child_id, "temporary", "1")
        c.delete_tag(child_id, "temporary")
        self.check("temporary" not in c.get_run(child_id).data.tags, "delete_tag")
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.delete_tag(child_id, "never-set"), "delete_tag of a tag never set")

        # Asynchronous logging: the client queues and sends log-batch calls from a thread.
        with mlflow.start_run(experiment_id=ids[2], run_name="async") as run:
            operations = [mlflow.log_metric("queued", float(step), step=step, synchronous=False) for step in range(50)]
            operations.append(mlflow.log_param("mode", "async", synchronous=False))
            for operation in operations:
                operation.wait()
        self.equal(sorted(m.step for m in c.get_metric_history(run.info.run_id, "queued")), list(range(50)), "asynchronously logged metrics")
        self.equal(c.get_run(run.info.run_id).data.params, {"mode": "async"}, "asynchronously logged param")

        frame = mlflow.search_runs([ids[1]], order_by=["attributes.start_time ASC"])
        self.equal(list(frame["run_id"]), [parent_id, child_id], "mlflow.search_runs (pandas) run ids")
        self.equal(list(frame["tags.mlflow.runName"]), ["parent", "child"], "mlflow.search_runs tags column")
        self.equal(frame["metrics.score"].tolist()[1], 3.0, "mlflow.search_runs metrics column")

    def step_datasets(self):
        """A dataset logged as a run input (what autologging does) comes back with the run."""
        c = self.client
        import pandas
        dataset = mlflow.data.from_pandas(pandas.DataFrame({"x": [1, 2, 3]}), name="tiny", targets="x")
        with mlflow.start_run(experiment_id=self.need("experiment_id"), run_name="with-data") as run:
            mlflow.log_input(dataset, context="training")
        inputs = c.get_run(run.info.run_id).inputs.dataset_inputs
        self.equal(len(inputs), 1, "one dataset input")
        self.equal((inputs[0].dataset.name, inputs[0].dataset.digest), ("tiny", dataset.digest), "dataset name and digest")
        self.equal({t.key: t.value for t in inputs[0].tags}.get("mlflow.data.context"), "training", "dataset input context tag")

    def step_artifacts(self):
        c = self.client
        experiment_id = self.need("experiment_id")
        source = self.workdir / "artifacts-in"
        (source / "data" / "nested").mkdir(parents=True)
        (source / "hello.txt").write_text("hello, baton\n")
        (source / "data" / "a.csv").write_text("x,y\n1,2\n")
        blob = bytes(range(256)) * 1000 + os.urandom(3 * 1024 * 1024)
        (source / "data" / "nested" / "blob.bin").write_bytes(blob)
        run = c.create_run(experiment_id, run_name="artifacts")
        run_id = run.info.run_id
        c.log_artifact(run_id, str(source / "hello.txt"))
        c.log_artifacts(run_id, str(source / "data"), artifact_path="data")
        c.log_text(run_id, "some notes", "notes/readme.md")

        top = {f.path: (f.is_dir, f.file_size) for f in c.list_artifacts(run_id)}
        self.equal(set(top), {"hello.txt", "data", "notes"}, "list_artifacts at the root")
        self.equal(top["hello.txt"], (False, len("hello, baton\n")), "hello.txt is a file with its size")
        self.equal(top["data"][0], True, "data is a directory")
        inside = {f.path: (f.is_dir, f.file_size) for f in c.list_artifacts(run_id, "data")}
        self.equal(inside, {"data/a.csv": (False, 8), "data/nested": (True, None)}, "list_artifacts of data")
        nested = {f.path: (f.is_dir, f.file_size) for f in c.list_artifacts(run_id, "data/nested")}
        self.equal(nested, {"data/nested/blob.bin": (False, len(blob))}, "list_artifacts of data/nested")
        self.equal(c.list_artifacts(run_id, "absent"), [], "list_artifacts of a missing folder")

        out = self.workdir / "artifacts-out"
        out.mkdir()
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="hello.txt", dst_path=str(out / "one"))
        self.equal(pathlib.Path(path).read_text(), "hello, baton\n", "downloaded hello.txt")
        folder = pathlib.Path(c.download_artifacts(run_id, "data", str(out / "two")))
        self.equal((folder / "a.csv").read_text(), "x,y\n1,2\n", "downloaded data/a.csv")
        self.check((folder / "nested" / "blob.bin").read_bytes() == blob, "downloaded data/nested/blob.bin is byte-identical")
        everything = pathlib.Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(out / "all")))
        files = sorted(str(p.relative_to(everything)) for p in everything.rglob("*") if p.is_file())
        self.equal(files, ["data/a.csv", "data/nested/blob.bin", "hello.txt", "notes/readme.md"], "all artifacts downloaded")
        self.equal(mlflow.artifacts.load_text(f"runs:/{run_id}/notes/readme.md"), "some notes", "load_text")
        uri = f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts/hello.txt"
        self.equal(pathlib.Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(out / "three"))).read_text(),
                   "hello, baton\n", "download by mlflow-artifacts URI")

    def step_logged_model(self):
        experiment_id = self.need("experiment_id")
        model = AddConstant(5)
        with mlflow.start_run(run_name="training") as run:
            mlflow.log_param("n", 5)
            info = mlflow.pyfunc.log_model(name="adder", python_model=model, pip_requirements=["mlflow==3.17.2"],
                                           tags={"kind": "toy"})
        run_id = run.info.run_id
        self.check(info.model_id and info.model_id.startswith("m-"), f"model_id: {info.model_id!r}")
        self.equal(info.model_uri, f"models:/{info.model_id}", "model_uri")
        logged = mlflow.get_logged_model(info.model_id)
        self.equal(logged.name, "adder", "logged model name")
        self.equal(logged.experiment_id, experiment_id, "logged model experiment_id")
        self.equal(logged.source_run_id, run_id, "logged model source_run_id")
        self.equal(str(logged.status), "READY", "logged model status after log_model")
        self.equal(logged.tags.get("kind"), "toy", "logged model tag")
        self.check(logged.artifact_location.endswith(f"/models/{info.model_id}/artifacts"),
                   f"logged model artifact_location: {logged.artifact_location!r}")
        found = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
        self.check(info.model_id in [m.model_id for m in found], f"search_logged_models finds it: {[m.model_id for m in found]}")
        names = {f.path for f in mlflow.MlflowClient().list_logged_model_artifacts(info.model_id)}
        self.check({"MLmodel", "python_model.pkl", "requirements.txt"} <= names, f"logged model files: {names}")

        loaded = mlflow.pyfunc.load_model(info.model_uri)
        self.equal(list(loaded.predict([1, 2, 3])), [6, 7, 8], "predict of the model loaded by models:/<model_id>")
        loaded = mlflow.pyfunc.load_model(f"runs:/{run_id}/adder")
        self.equal(list(loaded.predict([10])), [15], "predict of the model loaded by runs:/<run>/adder")
        self.state.update(model_run_id=run_id, model_id=info.model_id)

    def step_registered_models(self):
        c = self.client
        name = self.name("rm")
        created = c.create_registered_model(name, tags={"domain": "fraud"}, description="first")
        self.equal(created.name, name, "create_registered_model name")
        self.check(created.creation_timestamp and created.creation_timestamp > 1_600_000_000_000,
                   f"creation_timestamp in ms: {created.creation_timestamp!r}")
        self.fails_with("RESOURCE_ALREADY_EXISTS", lambda: c.create_registered_model(name), "create_registered_model with a taken name")
        got = c.get_registered_model(name)
        self.equal((got.description, got.tags), ("first", {"domain": "fraud"}), "get_registered_model description and tags")
        c.update_registered_model(name, description="second")
        self.equal(c.get_registered_model(name).description, "second", "update_registered_model description")
        c.set_registered_model_tag(name, "owner", "e2e")
        self.equal(c.get_registered_model(name).tags, {"domain": "fraud", "owner": "e2e"}, "set_registered_model_tag")
        c.delete_registered_model_tag(name, "domain")
        self.equal(c.get_registered_model(name).tags, {"owner": "e2e"}, "delete_registered_model_tag")

        sibling = self.name("rm-sibling")
        c.create_registered_model(sibling)
        new_name = self.name("rm-renamed")
        c.rename_registered_model(name, new_name)
        self.equal(c.get_registered_model(new_name).description, "second", "the renamed model keeps its description")
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.get_registered_model(name), "get_registered_model of the old name")
        self.fails_with("RESOURCE_ALREADY_EXISTS", lambda: c.rename_registered_model(new_name, sibling), "rename onto a taken name")

        self.equal([m.name for m in c.search_registered_models(filter_string=f"name = '{new_name}'")], [new_name],
                   "search_registered_models by name")
        like = sorted(m.name for m in c.search_registered_models(filter_string=f"name LIKE 'e2e-rm-%{self.suffix}'"))
        self.equal(like, sorted([new_name, sibling]), "search_registered_models with LIKE")
        self.check(new_name in [m.name for m in c.search_registered_models(max_results=1000)], "search_registered_models without a filter")
        self.equal(c.search_registered_models(filter_string=f"name = '{self.name('missing')}'"), [], "search of a missing name")

        page_prefix = self.name("rm-page")
        for index in range(5):
            c.create_registered_model(f"{page_prefix}-{index}")
        pages, token = [], None
        for _ in range(10):
            page = c.search_registered_models(filter_string=f"name LIKE '{page_prefix}-%'", max_results=2, order_by=["name ASC"],
                                              page_token=token)
            pages.append([m.name.rsplit("-", 1)[1] for m in page])
            token = page.token
            if not token:
                break
        self.equal(pages, [["0", "1"], ["2", "3"], ["4"]], "search_registered_models pages of max_results=2, name ASC")
        for index in range(5):
            c.delete_registered_model(f"{page_prefix}-{index}")

        c.delete_registered_model(sibling)
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.get_registered_model(sibling), "get after delete_registered_model")
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.delete_registered_model(sibling), "delete of a deleted model")
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.get_registered_model(self.name("missing")), "get of an unknown model")
        self.state["registered_model"] = new_name

    def step_model_versions(self):
        c = self.client
        run_id = self.need("model_run_id")
        model_id = self.need("model_id")
        name = self.name("versions")
        first = mlflow.register_model(f"runs:/{run_id}/adder", name)  # creates the registered model too
        self.equal((first.name, first.version), (name, "1"), "register_model from runs:/ creates version 1")
        self.equal(first.run_id, run_id, "version run_id")
        self.equal(first.status, "READY", "version status")
        self.equal(first.current_stage, "None", "version current_stage")
        second = mlflow.register_model(f"models:/{model_id}", name, tags={"origin": "logged"})
        self.equal(second.version, "2", "register_model from models:/<model_id> is version 2")
        self.equal(second.tags, {"origin": "logged"}, "tags given to register_model")
        got = c.get_model_version(name, "2")
        self.equal((got.name, got.version, got.run_id), (name, "2", run_id), "get_model_version")
        self.check(got.creation_timestamp and got.creation_timestamp > 1_600_000_000_000, f"creation_timestamp: {got.creation_timestamp!r}")
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.get_model_version(name, "99"), "get_model_version of an unknown version")

        versions = sorted(v.version for v in c.search_model_versions(f"name = '{name}'"))
        self.equal(versions, ["1", "2"], "search_model_versions by name")
        self.equal(sorted(v.version for v in c.search_model_versions(f"run_id = '{run_id}'") if v.name == name), ["1", "2"],
                   "search_model_versions by run_id")
        latest = c.get_registered_model(name).latest_versions
        self.equal(sorted(v.version for v in latest), ["2"], "latest_versions of the registered model (stage None)")

        c.set_model_version_tag(name, "1", "validated", "yes")
        self.equal(c.get_model_version(name, "1").tags, {"validated": "yes"}, "set_model_version_tag")
        c.delete_model_version_tag(name, "1", "validated")
        self.equal(c.get_model_version(name, "1").tags, {}, "delete_model_version_tag")
        c.update_model_version(name, "1", description="the first")
        self.equal(c.get_model_version(name, "1").description, "the first", "update_model_version description")

        uri = c.get_model_version_download_uri(name, "1")
        self.check(isinstance(uri, str) and uri.endswith(f"/models/{model_id}/artifacts"), f"get_model_version_download_uri: {uri!r}")
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
        self.equal(list(loaded.predict([0])), [5], "predict of models:/<name>/1")

        c.delete_model_version(name, "2")
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.get_model_version(name, "2"), "get of a deleted version")
        third = c.create_model_version(name, f"models:/{model_id}", run_id=run_id, model_id=model_id)
        self.equal(third.version, "3", "a version number is never reused after a delete")
        self.equal(sorted(v.version for v in c.search_model_versions(f"name = '{name}'")), ["1", "3"], "versions after delete and create")
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.create_model_version(self.name("missing"), f"models:/{model_id}", run_id=run_id,
                                                                                     model_id=model_id),
                        "create_model_version of an unknown registered model")
        self.state["versioned_model"] = name

    def step_aliases(self):
        c = self.client
        name = self.need("versioned_model")
        c.set_registered_model_alias(name, "champion", "1")
        c.set_registered_model_alias(name, "challenger", "3")
        by_alias = c.get_model_version_by_alias(name, "champion")
        self.equal(by_alias.version, "1", "get_model_version_by_alias")
        self.equal(by_alias.aliases, ["champion"], "a version lists its aliases")
        self.equal(c.get_registered_model(name).aliases, {"champion": "1", "challenger": "3"}, "a registered model lists its aliases")
        loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        self.equal(list(loaded.predict([1, 2])), [6, 7], "predict of models:/<name>@champion")
        c.set_registered_model_alias(name, "champion", "3")  # moves the alias
        self.equal(c.get_model_version_by_alias(name, "champion").version, "3", "an alias moved to another version")
        self.equal(c.get_model_version(name, "1").aliases, [], "the old version lost the moved alias")
        c.delete_registered_model_alias(name, "challenger")
        self.fails_with("INVALID_PARAMETER_VALUE", lambda: c.get_model_version_by_alias(name, "challenger"), "a deleted alias")
        self.fails_with("INVALID_PARAMETER_VALUE", lambda: c.get_model_version_by_alias(name, "nobody"), "an unknown alias")
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.set_registered_model_alias(name, "x", "42"), "an alias to a missing version")
        c.delete_model_version(name, "3")
        self.equal(c.get_registered_model(name).aliases, {}, "deleting a version removes its aliases")
        self.fails_with("INVALID_PARAMETER_VALUE", lambda: c.get_model_version_by_alias(name, "champion"),
                        "an alias of a deleted version")

    def step_stages(self):
        c = self.client
        run_id = self.need("model_run_id")
        model_id = self.need("model_id")
        name = self.name("stages")
        c.create_registered_model(name)
        for _ in range(3):
            c.create_model_version(name, f"models:/{model_id}", run_id=run_id, model_id=model_id)
        moved = c.transition_model_version_stage(name, "1", "Production")
        self.equal(moved.current_stage, "Production", "transition_model_version_stage answer")
        c.transition_model_version_stage(name, "2", "Staging")
        self.equal(c.get_model_version(name, "2").current_stage, "Staging", "stage after a transition")
        c.transition_model_version_stage(name, "3", "Production", archive_existing_versions=True)
        stages = {v.version: v.current_stage for v in c.search_model_versions(f"name = '{name}'")}
        self.equal(stages, {"1": "Archived", "2": "Staging", "3": "Production"}, "archive_existing_versions archives the old Production")
        latest = {v.current_stage: v.version for v in c.get_latest_versions(name)}
        self.equal(latest, {"Archived": "1", "Staging": "2", "Production": "3"}, "get_latest_versions per stage")
        self.fails_with("INVALID_PARAMETER_VALUE", lambda: c.transition_model_version_stage(name, "2", "Shipped"), "an unknown stage")

    def step_cleanup(self):
        c = self.client
        name = self.need("registered_model")
        c.delete_registered_model(name)
        self.fails_with("RESOURCE_DOES_NOT_EXIST", lambda: c.get_registered_model(name), "get after delete")
        c.delete_experiment(self.need("experiment_id"))
        self.equal(c.get_experiment(self.state["experiment_id"]).lifecycle_stage, "deleted", "experiment deleted at the end")


class AddConstant(mlflow.pyfunc.PythonModel):
    """A tiny pyfunc model: adds a constant to every input value."""

    def __init__(self, constant):
        self.constant = constant

    def predict(self, context, model_input, params=None):
        values = model_input.iloc[:, 0].tolist() if hasattr(model_input, "iloc") else list(model_input)
        return [value + self.constant for value in values]


STEPS = [
    "experiments", "runs", "params_metrics_tags", "search_runs", "more_tracking", "datasets", "artifacts", "logged_model",
    "registered_models", "model_versions", "aliases", "stages", "cleanup",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", help="where to write the JSON report")
    parser.add_argument("--only", action="append", help="run only these steps (repeatable)")
    arguments = parser.parse_args()
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        parser.error("set MLFLOW_TRACKING_URI")
    unknown = set(arguments.only or ()) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}; the steps are {STEPS}")
    results = []
    with tempfile.TemporaryDirectory(prefix="mlflow-e2e-") as workdir:
        workflow = Workflow(workdir)
        for step in STEPS:
            if arguments.only and step not in arguments.only:
                continue
            workflow.checks = 0
            started = time.monotonic()
            error = None
            try:
                getattr(workflow, "step_" + step)()
            except Exception as failure:  # noqa: BLE001 -- every failure is reported, not raised
                error = "".join(traceback.format_exception_only(type(failure), failure)).strip()
                frames = [frame for frame in traceback.extract_tb(failure.__traceback__) if frame.name.startswith("step_")]
                if frames:
                    error += f"\n    at line {frames[-1].lineno}: {frames[-1].line}"
            while mlflow.active_run():
                mlflow.end_run("FAILED")
            result = {"name": step, "ok": error is None, "checks": workflow.checks, "error": error,
                      "seconds": round(time.monotonic() - started, 2)}
            results.append(result)
            mark = "PASS" if result["ok"] else "FAIL"
            print(f"{mark} {step}: {result['checks']} checks passed, {result['seconds']} s" + (f"\n    {error}" if error else ""), flush=True)
    passed = sum(r["ok"] for r in results)
    checks = sum(r["checks"] for r in results)
    print(f"{passed} of {len(results)} steps passed ({checks} checks passed) against {os.environ['MLFLOW_TRACKING_URI']}", flush=True)
    report = {"tracking_uri": os.environ["MLFLOW_TRACKING_URI"], "mlflow_version": mlflow.__version__, "steps": results}
    if arguments.report:
        pathlib.Path(arguments.report).write_text(json.dumps(report, indent=2))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

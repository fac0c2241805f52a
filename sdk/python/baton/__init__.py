"""Baton's Python SDK: pipelines as Python functions, and a task's view of the running Baton.

    from baton import dag, flow, task, EventTrigger

    @task(retries=2)
    def extract():
        return {"rows": 400}

    @task
    def load(extracted):
        print(f"loading {extracted['rows']} rows")

    @dag(schedule="@hourly", owner="data_engineering")
    def customer_data_pipeline():
        load(extract())

Put the file in Baton's pipelines folder. Baton reads it in a separate process
(`python -m baton.describe FILE`), and runs each task in a fresh process
(`python -m baton.run`) with its upstream results as arguments.

Inside a task: publish_event, emit_metric, check_data_freshness (raising DataSLAViolation)
and get_context talk to the Baton that runs the task; start_run, register_model and
get_approved_model_from_registry use its experiment tracking and model registry;
write_to_feature_store, get_historical_features and get_online_features use its feature store.
"""

__version__ = "0.1.0"

from ._client import check_data_freshness, emit_metric, publish_event  # noqa: E402
from ._context import TaskContext, get_context  # noqa: E402
from ._features import get_historical_features, get_online_features, write_to_feature_store  # noqa: E402
from ._errors import BatonAPIError, BatonError, DataSLAViolation, PipelineDefinitionError  # noqa: E402
from ._pipeline import EventTrigger, Pipeline, Task, dag, flow, task  # noqa: E402
from ._registry import (  # noqa: E402
    ModelNotApproved, TrackingRun, approve_model, download_artifacts, get_approved_model_from_registry, get_model_version,
    register_model,
    start_run,
)

__all__ = [
    "BatonAPIError", "BatonError", "DataSLAViolation", "EventTrigger", "ModelNotApproved", "Pipeline",
    "PipelineDefinitionError", "Task", "TaskContext", "TrackingRun", "approve_model", "check_data_freshness", "dag",
    "download_artifacts", "emit_metric", "flow", "get_approved_model_from_registry", "get_context",
    "get_historical_features", "get_model_version", "get_online_features", "publish_event", "register_model",
    "start_run", "task", "write_to_feature_store",
]

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
write_to_feature_store, get_historical_features and get_online_features use its feature store;
log_baseline records a model version's baseline for drift monitoring. deploy_canary,
monitor_canary, validate_metrics, deploy_full, rollback and deployment_status drive its model
deployments (docs/model-deployments.md); predict and send_feedback go through its gateway.
"""

__version__ = "0.1.0"

from ._baseline import build_baseline, log_baseline  # noqa: E402
from ._client import check_data_freshness, emit_metric, publish_event  # noqa: E402
from ._context import TaskContext, get_context  # noqa: E402
from ._deploy import (  # noqa: E402
    CanaryRolledBack, DeploymentConflict, DeploymentError, DeploymentNotFound, DeploymentTimeout, Prediction,
    PredictionError, ValidationResult, ab_results, deploy_canary, deploy_full, deployment_events, deployment_status,
    monitor_canary, predict, rollback, send_feedback, start_ab_test, validate_metrics,
)
from ._features import get_historical_features, get_online_features, write_to_feature_store  # noqa: E402
from ._errors import BatonAPIError, BatonError, DataSLAViolation, PipelineDefinitionError  # noqa: E402
from ._pipeline import EventTrigger, Pipeline, Task, dag, flow, task  # noqa: E402
from ._registry import (  # noqa: E402
    ModelNotApproved, TrackingRun, active_run, approve_model, download_artifacts, get_approved_model_from_registry,
    get_model_version, get_run, register_model, start_run,
)

__all__ = [
    "BatonAPIError", "BatonError", "CanaryRolledBack", "DataSLAViolation", "DeploymentConflict", "DeploymentError",
    "DeploymentNotFound", "DeploymentTimeout", "EventTrigger", "ModelNotApproved", "Pipeline",
    "PipelineDefinitionError", "Prediction", "PredictionError", "Task", "TaskContext", "TrackingRun",
    "ValidationResult", "ab_results", "active_run", "approve_model", "build_baseline", "check_data_freshness", "dag",
    "deploy_canary", "deploy_full", "deployment_events", "deployment_status", "download_artifacts", "emit_metric",
    "flow", "get_approved_model_from_registry", "get_context", "get_historical_features", "get_model_version",
    "get_online_features", "get_run", "log_baseline", "monitor_canary", "predict", "publish_event", "register_model",
    "rollback", "send_feedback", "start_ab_test", "start_run", "task", "validate_metrics", "write_to_feature_store",
]

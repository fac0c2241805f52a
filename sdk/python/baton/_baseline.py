"""A model version's baseline for drift monitoring: `baseline.json`, written by the trainer.

    with baton.start_run("churn_training") as run:
        ...
        baton.log_baseline(training_rows, training_predictions, artifact_path="model")

For every numeric feature and for the predictions it holds quantile bin edges and the share of
the training rows in each bin; Baton bins live requests and predictions the same way and
compares the shares (population stability index). The format is documented in
docs/model-deployments.md (Monitoring).
"""

import bisect
import datetime
import json
import math
import os
import tempfile

from . import _registry
from ._errors import BatonError

FORMAT = "baton.baseline/1"
FILENAME = "baseline.json"


def _columns(features):
    """Column name -> list of values, from a DataFrame, a dict of columns or a list of rows."""
    if hasattr(features, "to_dict"):  # a pandas DataFrame, without importing pandas
        features = features.to_dict(orient="list")
    if isinstance(features, dict):
        return {str(name): list(values) for name, values in features.items()}
    rows = list(features)
    columns = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BatonError(f"log_baseline: row {index + 1} is a {type(row).__name__}, not a dict of feature values",
                             fix="pass a list of dicts, a dict of columns or a pandas DataFrame")
        for name in row:
            columns.setdefault(str(name), [])
    for row in rows:
        for name, values in columns.items():
            values.append(row.get(name))
    return columns


def _numeric(values):
    """The finite numbers of a column, and how many values were missing; None when the column
    holds anything that is not a number (an id, a category): it has no bins."""
    numbers, missing = [], 0
    for value in values:
        if value is None or value == "":
            missing += 1
            continue
        if isinstance(value, bool):
            return None, 0
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None, 0
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None, 0
        if math.isnan(value) or math.isinf(value):
            missing += 1
            continue
        numbers.append(value)
    return numbers, missing


def _quantile(ordered, q):
    """Linear interpolation between the closest ranks (numpy's default)."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bin_index(edges, value):
    """The bin of `value`: the number of inner edges at or below it. Values under the first edge
    fall in the first bin and values over the last edge in the last one."""
    return bisect.bisect_right(edges, value, 1, max(1, len(edges) - 1)) - 1


def histogram(numbers, bins=10):
    """Quantile bin edges (ascending, distinct; first the minimum, last the maximum) and the
    share of `numbers` in each bin. A constant column has edges [v, v] and one bin."""
    if not numbers:
        return None
    ordered = sorted(numbers)
    edges = []
    for step in range(bins + 1):
        edge = _quantile(ordered, step / bins)
        edge = round(edge, 12)
        if not edges or edge > edges[-1]:
            edges.append(edge)
    if len(edges) == 1:
        edges.append(edges[0])
    counts = [0] * (len(edges) - 1)
    for value in numbers:
        counts[bin_index(edges, value)] += 1
    return {"edges": edges, "shares": [count / len(numbers) for count in counts], "count": len(numbers),
            "mean": sum(numbers) / len(numbers), "min": ordered[0], "max": ordered[-1]}


def _prediction_values(predictions):
    if hasattr(predictions, "tolist"):
        predictions = predictions.tolist()
    values = []
    for item in predictions:
        if isinstance(item, dict):
            # The same fields the gateway reads a numeric prediction from.
            item = next((item[key] for key in ("prediction", "predictions", "churn_probability", "score") if key in item), None)
        if isinstance(item, (list, tuple)):
            item = item[0] if item else None
        values.append(item)
    return values


def build_baseline(features, predictions, bins=10):
    """The baseline document (what log_baseline writes), without uploading it."""
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise BatonError(f"bins must be an integer of at least 2, got {bins!r}")
    columns = _columns(features)
    described, skipped = {}, []
    for name, values in columns.items():
        numbers, missing = _numeric(values)
        if numbers is None or not numbers:
            skipped.append(name)
            continue
        described[name] = dict(histogram(numbers, bins), missing=missing)
    numbers, missing = _numeric(_prediction_values(predictions))
    if not numbers:
        raise BatonError("log_baseline needs numeric predictions (e.g. churn probabilities), one per training row")
    rows = max((len(values) for values in columns.values()), default=0)
    if columns and len(numbers) + missing != rows:
        raise BatonError(f"log_baseline got {rows} feature rows but {len(numbers) + missing} predictions",
                         fix="pass one prediction per row of features")
    return {
        "format": FORMAT,
        "bins": bins,
        "rows": rows,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        "features": described,
        "skipped_features": skipped,
        "predictions": dict(histogram(numbers, bins), missing=missing),
    }


def log_baseline(features, predictions, run=None, artifact_path=None, bins=10):
    """Writes `baseline.json` for drift monitoring as an artifact of a tracking run and returns it.

    `features`: the training inputs (list of dicts, dict of columns or a pandas DataFrame);
    non-numeric columns (ids, categories) are listed under `skipped_features`.
    `predictions`: the model's numeric predictions on those rows, in the same order.
    `run`: a TrackingRun or a run id; default the run start_run began (still open), else
    MLFLOW_RUN_ID. `artifact_path`: the folder in the run's artifacts; pass the folder the model
    version is registered from (e.g. "model" for runs:/ID/model) so the version's files hold it.
    """
    if run is None:
        run = _registry.active_run()
    if run is None and os.environ.get("MLFLOW_RUN_ID"):
        run = os.environ["MLFLOW_RUN_ID"]
    if run is None:
        raise BatonError("log_baseline needs a tracking run: none is open and MLFLOW_RUN_ID is not set",
                         fix="call it inside `with baton.start_run(...) as run:` or pass run=RUN or run='RUN_ID'")
    if isinstance(run, str):
        run = _registry.get_run(run)
    document = build_baseline(features, predictions, bins=bins)
    with tempfile.TemporaryDirectory(prefix="baton-baseline-") as folder:
        path = os.path.join(folder, FILENAME)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, sort_keys=True, allow_nan=False)
        run.log_artifact(path, artifact_path=artifact_path)
    return document

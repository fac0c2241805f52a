"""The feature store from Python: write rows, build point-in-time training sets, look up the
latest values for serving.

Under `baton up` these call the REST API (`/api/v1/features/...`); under `baton trigger --wait`
they run the `baton features` CLI on the task's database, with the definitions in
BATON_PIPELINES (default: ./pipelines from the task's working directory). Rows are dicts (or a pandas DataFrame): the entity's join keys,
`event_timestamp` (a datetime, ISO 8601 text or epoch seconds) and feature values.
"""

import json
import os
import tempfile

from . import _client, _context
from ._errors import BatonError

#: Rows per request; each request is one all-or-nothing batch on the server.
BATCH_ROWS = 50_000


def _records(rows, what):
    if hasattr(rows, "to_dict"):  # a pandas DataFrame, without importing pandas
        rows = rows.to_dict(orient="records")
    if isinstance(rows, dict):
        rows = [rows]
    rows = list(rows)
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BatonError(f"{what}: row {index + 1} is a {type(row).__name__}, not a dict of column values",
                             fix="pass a list of dicts such as {'customer_id': 42, 'event_timestamp': datetime.now(), ...}")
    # Through the SDK's JSON rules: datetimes become ISO 8601 in UTC, NaN is refused.
    return json.loads(_client.to_json(rows, what))


def _cli_folder():
    """`--pipelines` for the CLI: BATON_PIPELINES, else the CLI's default (./pipelines)."""
    folder = os.environ.get("BATON_PIPELINES")
    return ["--pipelines", folder] if folder else []


def write_to_feature_store(view, rows, batch_size=BATCH_ROWS):
    """Writes rows to a feature view. Each batch of `batch_size` rows is checked and committed
    whole: a bad row (wrong type, unknown column, missing join key or event_timestamp) raises
    BatonAPIError naming its row, column and value, and nothing of that batch is stored. A row
    with the entity and event time of a stored one replaces it, so a retried task never
    duplicates. Returns the totals: rows, inserted, overwritten."""
    records = _records(rows, f"the rows for feature view {view!r}")
    if not records:
        raise BatonError(f"no rows to write to feature view {view!r}")
    context = _context.TaskContext()
    totals = {"view": view, "rows": 0, "inserted": 0, "overwritten": 0}
    transport = _client._transport("write_to_feature_store")
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        if transport == "http":
            body = {"rows": batch}
            if context.run_id is not None:
                body["run_id"] = context.run_id
            if context.pipeline:
                body["pipeline"] = context.pipeline
            if context.task:
                body["task"] = context.task
            answer = _client._request("POST", f"/api/v1/features/views/{view}/rows", body)
        else:
            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as handle:
                for row in batch:
                    handle.write(json.dumps(row) + "\n")
                path = handle.name
            try:
                answer = _client._cli("features", "ingest", view, "--file", path, *_cli_folder())
            finally:
                os.unlink(path)
        for key in ("rows", "inserted", "overwritten"):
            totals[key] += int(answer.get(key, 0))
    return totals


def get_historical_features(service, entity_rows):
    """A point-in-time correct training set: each entity row (join keys, `event_timestamp`,
    and any other columns such as labels, which are kept) with the service's features as they
    were at that time, within each view's ttl, never later. Returns a list of dicts."""
    records = _records(entity_rows, f"the entity rows for feature service {service!r}")
    if _client._transport("get_historical_features") == "http":
        text = _client._request("POST", "/api/v1/features/historical", {"service": service, "entities": records}, raw=True)
    else:
        with tempfile.TemporaryDirectory() as folder:
            source, target = os.path.join(folder, "entities.jsonl"), os.path.join(folder, "training.jsonl")
            with open(source, "w", encoding="utf-8") as handle:
                for row in records:
                    handle.write(json.dumps(row) + "\n")
            _client._cli("features", "historical", "--entities", source, "--service", service, "--out", target,
                         *_cli_folder())
            with open(target, encoding="utf-8") as handle:
                text = handle.read()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def get_online_features(service, entity_rows):
    """The latest values of the service's features for each entity (dicts of join keys).
    Returns one dict per entity: its join keys and features; a feature the store has no value
    for, or whose value is older than the view's ttl, is None."""
    records = _records(entity_rows, f"the entities for feature service {service!r}")
    if _client._transport("get_online_features") == "http":
        answer = _client._request("POST", "/api/v1/features/online", {"service": service, "entities": records})
    else:
        args = ["features", "lookup", service, *_cli_folder()]
        for row in records:
            args += ["--entity", ",".join(f"{key}={value}" for key, value in row.items())]
        answer = _client._cli(*args)
    return [{**result["entity"], **result["values"]} for result in answer.get("results", [])]

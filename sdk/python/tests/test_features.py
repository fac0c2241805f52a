"""The feature store calls against a stand-in for Baton's REST API."""

import datetime

import pytest

import baton
from test_client import fake  # noqa: F401  (the fixture)


def test_write_to_feature_store_batches_rows_with_the_tasks_lineage(fake):  # noqa: F811
    fake.answers[("POST", "/api/v1/features/views/customer_features/rows")] = (
        201, {"view": "customer_features", "rows": 2, "inserted": 2, "overwritten": 0, "entities": 2})
    when = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.timezone.utc)
    rows = [{"customer_id": i, "event_timestamp": when, "total_spend": 1.5 * i} for i in range(3)]
    totals = baton.write_to_feature_store("customer_features", rows, batch_size=2)
    batches = [r for r in fake.requests if r["path"] == "/api/v1/features/views/customer_features/rows"]
    assert [len(r["body"]["rows"]) for r in batches] == [2, 1], "one all-or-nothing batch per request"
    assert batches[0]["body"]["rows"][1] == {"customer_id": 1, "event_timestamp": "2026-11-25T12:00:00Z", "total_spend": 1.5}
    assert batches[0]["body"]["run_id"] == 7 and batches[0]["body"]["pipeline"] == "customer_data_pipeline"
    assert totals == {"view": "customer_features", "rows": 4, "inserted": 4, "overwritten": 0}


def test_a_refused_row_raises_with_the_servers_message(fake):  # noqa: F811
    fake.answers[("POST", "/api/v1/features/views/v/rows")] = (
        400, {"error": {"code": "invalid_request", "field": "total_spend",
                        "message": "row 2, column total_spend: not a number (value: x, expected: float)"}})
    with pytest.raises(baton.BatonAPIError) as raised:
        baton.write_to_feature_store("v", [{"customer_id": 1}, {"customer_id": 2, "total_spend": "x"}])
    assert "row 2, column total_spend" in str(raised.value) and raised.value.field == "total_spend"
    with pytest.raises(baton.BatonError, match="row 1 is a list"):
        baton.write_to_feature_store("v", [[1, 2]])


def test_online_lookups_flatten_entity_and_values(fake):  # noqa: F811
    fake.answers[("POST", "/api/v1/features/online")] = (200, {
        "service": "churn", "features": ["spend"],
        "results": [{"entity": {"customer_id": 1}, "values": {"spend": 2.5}, "statuses": {"spend": "PRESENT"},
                     "event_timestamps": {"spend": "2026-11-25T12:00:00Z"}}]})
    assert baton.get_online_features("churn", [{"customer_id": 1}]) == [{"customer_id": 1, "spend": 2.5}]
    assert fake.requests[-1]["body"] == {"service": "churn", "entities": [{"customer_id": 1}]}

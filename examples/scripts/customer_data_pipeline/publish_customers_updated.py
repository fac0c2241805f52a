#!/usr/bin/env python3
"""Tell the other teams that new customer data is available.

The lecture's event-based hand-off:

    publish_event("data.customers.updated", {
        "timestamp": datetime.now(), "record_count": 1000000})

Runs after update_catalog and publishes the event through the Baton CLI:

    ${BATON_CLI:-baton} events publish data.customers.updated \
        --data '{"timestamp": ..., "record_count": N, ...}' --id customers-<logical date> \
        --source data_engineering

(as an argv list, no shell).  The id is derived from the run's logical date,
so a retry or a re-run of the same interval publishes the event only once and
starts training_triggered_by_data_update only once.  Pipelines subscribe with
`triggers: [{event: data.customers.updated}]`.

Publishing is best effort: without a Baton to talk to (the script run by
hand, or `baton trigger --wait` without a server) it logs a line and the
pipeline still succeeds.  Also reports the pipeline's duration (last task).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402

EVENT = "data.customers.updated"


def main():
    bt.begin()
    catalog = bt.require_input("update_catalog")   # its output lists the row counts
    record_count = catalog["tables"]["clean_customers"]
    payload = {
        "timestamp": bt.now_iso(),
        "record_count": record_count,
        "logical_date": bt.logical_date(),
        "schema_version": catalog.get("schema_version"),
    }
    event_id = f"customers-{bt.logical_date()}"
    published = bt.baton_cli("events", "publish", EVENT,
                             "--data", json.dumps(payload, sort_keys=True), "--id", event_id,
                             "--source", "data_engineering")

    duration = bt.report_pipeline_duration(owner="data_engineering")
    bt.write_output({
        "event": EVENT,
        "event_id": event_id,
        "published": published,
        "record_count": record_count,
        "pipeline_duration_s": duration,
    })


if __name__ == "__main__":
    main()

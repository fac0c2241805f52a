#!/usr/bin/env python3
"""Write the computed features to Baton's feature store (the lecture's
`write_to_feature_store(features)`).

The rows go to the feature view customer_features (pipelines/features.yaml)
with the SDK's write_to_feature_store: Baton checks every row against the
view's types and commits the batch in one transaction, or rejects it whole
naming the bad row, column and value. Each row's event_timestamp is the end of
the run's data interval, so a retried or re-run interval overwrites its own
rows and never duplicates them, and a point-in-time join sees each feature set
from the moment it describes.

The write itself records an update of the dataset customer_features (the view
is a catalog dataset) and publishes dataset.customer_features.updated, which
model_training_flow's create_features waits for.
"""

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
from churn_features import FEATURES, LABEL  # noqa: E402

VIEW = "customer_features"
INTEGER_COLUMNS = {"txn_count", "clicks", "sessions", LABEL}


def sdk():
    """Baton's Python SDK (see common/baton_sdk.py for how it is found)."""
    from baton_sdk import baton
    return baton


def main():
    bt.begin()
    baton = sdk()
    upstream = bt.require_input("compute_features")
    with open(upstream["path"], newline="", encoding="utf-8") as f:
        computed = list(csv.DictReader(f))

    _, interval_end = bt.data_interval()
    rows = []
    for row in computed:
        values = {name: (int(float(row[name])) if name in INTEGER_COLUMNS else float(row[name])) for name in FEATURES + [LABEL]}
        rows.append({"customer_id": row["customer_id"], "event_timestamp": interval_end, **values})
    try:
        written = baton.write_to_feature_store(VIEW, rows)
    except baton.BatonAPIError as error:
        bt.fail(f"the feature store refused the features: {error}")

    # The per-run working copies in var/feature_pipeline/ are no longer needed.
    bt.prune_partitions(bt.var_dir() / "feature_pipeline", keep=24)

    bt.log(f"wrote {written['rows']} feature rows to feature view {VIEW} as of {interval_end} "
           f"({written['inserted']} new, {written['overwritten']} overwritten)")
    duration = bt.report_pipeline_duration(owner="ml_engineering")
    bt.write_output({
        "record_count": written["rows"],
        "feature_view": VIEW,
        "event_timestamp": interval_end,
        "inserted": written["inserted"],
        "overwritten": written["overwritten"],
        "data_as_of": upstream["data_as_of"],
        "pipeline_duration_s": duration,
    })


if __name__ == "__main__":
    main()

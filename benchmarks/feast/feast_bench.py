"""Feast's side of `baton-bench features`: the same feature rows and entity rows, Feast 0.67's
Python SDK with its SQLite online store and file (parquet) offline store, and the same online
lookups. Prints one JSON object on its last line.

    python feast_bench.py --data rows.csv --entities entities.csv --workdir DIR --lookups 10000
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--entities", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--lookups", type=int, default=10000)
    parser.add_argument("--historical", type=int, default=1, help="0 skips the point-in-time join")
    args = parser.parse_args()

    import pandas as pd
    from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64, String, Bool

    os.makedirs(args.workdir, exist_ok=True)
    rows = pd.read_csv(args.data)
    rows["event_timestamp"] = pd.to_datetime(rows["event_timestamp"], unit="s", utc=True)
    parquet = os.path.join(args.workdir, "customer_stats.parquet")
    rows.to_parquet(parquet)
    with open(os.path.join(args.workdir, "feature_store.yaml"), "w") as out:
        out.write(
            "project: bench\nregistry: registry.db\nprovider: local\n"
            "online_store:\n  type: sqlite\n  path: online.db\n"
            "offline_store:\n  type: file\nentity_key_serialization_version: 3\n")
    store = FeatureStore(repo_path=args.workdir)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    source = FileSource(path=parquet, timestamp_field="event_timestamp")
    view = FeatureView(
        name="customer_stats", entities=[customer], ttl=timedelta(days=30),
        schema=[Field(name="customer_id", dtype=Int64), Field(name="total_spend", dtype=Float64), Field(name="n_orders", dtype=Int64),
                Field(name="avg_basket", dtype=Float64), Field(name="segment", dtype=String), Field(name="is_active", dtype=Bool)],
        source=source, online=True)
    service = FeatureService(name="churn", features=[view])
    store.apply([customer, view, service])

    started = time.perf_counter()
    end = rows["event_timestamp"].max().to_pydatetime() + timedelta(seconds=1)
    start = rows["event_timestamp"].min().to_pydatetime() - timedelta(seconds=1)
    store.materialize(start, end)
    materialize_seconds = time.perf_counter() - started

    ids = rows["customer_id"].unique().tolist()
    rng = random.Random(7)
    service = store.get_feature_service("churn")
    for _ in range(200):  # warm-up
        store.get_online_features(features=service, entity_rows=[{"customer_id": int(rng.choice(ids))}]).to_dict()
    latencies = []
    for _ in range(args.lookups):
        customer_id = int(rng.choice(ids))
        t = time.perf_counter()
        store.get_online_features(features=service, entity_rows=[{"customer_id": customer_id}]).to_dict()
        latencies.append((time.perf_counter() - t) * 1000)
    result = {
        "feast_version": __import__("feast").__version__,
        "online_p50_ms": percentile(latencies, 0.50),
        "online_p99_ms": percentile(latencies, 0.99),
        "online_mean_ms": statistics.mean(latencies),
        "materialize_seconds": materialize_seconds,
    }
    if args.historical:
        entities = pd.read_csv(args.entities)
        entities["event_timestamp"] = pd.to_datetime(entities["event_timestamp"], unit="s", utc=True)
        t = time.perf_counter()
        frame = store.get_historical_features(entity_df=entities, features=service).to_df()
        seconds = time.perf_counter() - t
        result["historical_rows"] = len(frame)
        result["historical_seconds"] = seconds
        result["historical_rows_per_second"] = len(entities) / seconds
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())

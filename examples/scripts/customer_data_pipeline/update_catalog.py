#!/usr/bin/env python3
"""Publish the warehouse's tables to the data catalog.

    python3 scripts/customer_data_pipeline/update_catalog.py \
        --interval-start 2024-06-01T10:00:00Z --interval-end 2024-06-01T11:00:00Z

Writes var/catalog/catalog.json: every table with its row count and columns,
the schema_version of the clean_customers contract, when it was updated and
which data interval the load covered.  Consumers (the feature pipeline) read
the catalog to see what they can rely on.  Also prunes old lake partitions.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
import contracts  # noqa: E402


def main():
    bt.begin()
    start, end = bt.data_interval()
    ap = argparse.ArgumentParser()
    ap.add_argument("--interval-start", default=start)
    ap.add_argument("--interval-end", default=end)
    args = ap.parse_args()

    load = bt.require_input("load_to_warehouse")
    wh = Path(load["warehouse_path"])
    db = bt.sqlite_readonly(wh)
    meta = dict(db.execute("SELECT key, value FROM _meta"))
    tables = {}
    names = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name != '_meta' ORDER BY name")]
    for name in names:
        tables[name] = {
            "rows": db.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0],
            "columns": [{"name": c[1], "type": c[2]} for c in db.execute(f"PRAGMA table_info({name})")],
            "location": f"warehouse/warehouse.sqlite#{name}",
        }
    db.close()
    tables[contracts.DATA_SLA["table"]]["sla"] = contracts.DATA_SLA

    catalog = {
        "owner": "data_engineering",
        "pipeline": bt.pipeline_name(),
        "schema_version": contracts.SCHEMA_VERSION,
        "updated_at": bt.now_iso(),
        "run_id": bt.run_id(),
        "logical_date": bt.logical_date(),
        "data_interval": {"start": args.interval_start, "end": args.interval_end},
        "data_as_of": meta.get("data_as_of"),
        "loaded_at": meta.get("loaded_at"),
        "tables": tables,
    }
    path = contracts.catalog_path()
    bt.atomic_write_json(path, catalog)
    summary = ", ".join("%s=%d" % (k, v["rows"]) for k, v in tables.items())
    bt.log(f"catalog updated: {path} ({summary})")

    # Keep the lake from growing forever: every run adds one partition per source and layer.
    keep = bt.param_int("keep_partitions", 6)
    pruned = 0
    for layer in ("raw", "clean"):
        for source in ("transactions", "clickstream", "crm"):
            pruned += len(bt.prune_partitions(bt.var_dir() / "lake" / layer / source, keep))
    if pruned:
        bt.log(f"pruned {pruned} old lake partitions (keeping {keep} per source)")

    bt.write_output({
        "catalog_path": str(path),
        "schema_version": contracts.SCHEMA_VERSION,
        "tables": {k: v["rows"] for k, v in tables.items()},
        "data_interval": catalog["data_interval"],
        "loaded_at": meta.get("loaded_at"),
    })


if __name__ == "__main__":
    main()

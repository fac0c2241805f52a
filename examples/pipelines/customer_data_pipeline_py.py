"""The lecture's Data Engineering pipeline, written with Baton's Python SDK.

`customer_data_pipeline()` at the bottom is the lecture's code; the tasks above it fill in its
helpers. It does what customer_data_pipeline.yaml does, on the same sample data (the YAML
version's cleaning rules, imported from scripts/), with its state under var/py/: extract the
three sources, clean them, load the SQLite warehouse (an update of the dataset
clean_customers_py), then write the catalog and announce the new data with the event
data.customers_py.updated.

The pipeline is named after this file, customer_data_pipeline_py, so it runs beside the YAML
one.
"""

import csv
import json
import os
import shutil
import sqlite3
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLES / "scripts" / "common"))
sys.path.insert(0, str(EXAMPLES / "scripts" / "customer_data_pipeline"))

import baton_task as bt  # noqa: E402
import load_to_warehouse as warehouse_loading  # noqa: E402  (the YAML version's table layout)
import sdk_example as ex  # noqa: E402
import transform as cleaning  # noqa: E402  (the YAML version's cleaning rules)
from baton import dag, publish_event, task  # noqa: E402

# Data Engineering provides this guarantee (the lecture's DATA_SLA; declared for Baton in
# datasets_py.yaml, where freshness and availability are checked).
DATA_SLA = {
    "table": "clean_customers_py",
    "freshness": "1 hour",
    "availability": "99.9%",
    "schema_version": "2.3.0",
}


# ---------------------------------------------------------------------------------------------
# Extract: a copy of each source, as-is, in the raw layer of the lake
# ---------------------------------------------------------------------------------------------

def _extract(source, filename, system):
    ex.begin()
    src = ex.DATA_DIR / filename
    if not src.is_file():
        raise FileNotFoundError(f"source {system} unavailable: {src} does not exist")
    dest = ex.partition_dir("lake", "raw", source) / filename
    tmp = bt.temp_path_for(dest)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    text = src.read_text(encoding="utf-8")
    if source == "transactions":
        records = max(0, len(text.splitlines()) - 1)
    elif source == "clickstream":
        records = sum(1 for line in text.splitlines() if line.strip())
    else:
        records = len(json.loads(text).get("records", []))
    print(f"extracted {records} {source} records from {system} -> {dest}")
    return {"source": source, "system": system, "path": str(dest), "records": records}


@task(retries=2, retry_delay="10s", timeout="2m")
def extract_from_postgres():
    return _extract("transactions", "transactions.csv", "postgres://shop/transactions")


@task(retries=2, retry_delay="10s", timeout="2m")
def extract_from_kafka():
    return _extract("clickstream", "clickstream.jsonl", "kafka://clickstream")


@task(retries=2, retry_delay="10s", timeout="2m")
def extract_from_salesforce_api():
    return _extract("crm", "crm.json", "salesforce://Contact")


# ---------------------------------------------------------------------------------------------
# Transform: dedupe, drop bad rows, normalise types
# ---------------------------------------------------------------------------------------------

def _transform(raw, cleaner):
    ex.begin()
    source = raw["source"]
    dropped, fixed = Counter(), Counter()
    rows = cleaner(raw["path"], dropped, fixed)
    dest = ex.partition_dir("lake", "clean", source) / f"{source}.csv"
    tmp = bt.temp_path_for(dest)
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(cleaning.COLUMNS[source])
        writer.writerows(rows)
    os.replace(tmp, dest)
    print(f"{source}: {raw['records']} rows in, {len(rows)} out, {sum(dropped.values())} dropped "
          f"({', '.join(f'{reason}: {n}' for reason, n in sorted(dropped.items())) or 'none'})")
    return {"source": source, "path": str(dest), "rows_out": len(rows), "dropped": dict(sorted(dropped.items()))}


@task(timeout="2m")
def transform_transactions(raw):
    return _transform(raw, cleaning.clean_transactions)


@task(timeout="2m")
def transform_clickstream(raw):
    return _transform(raw, cleaning.clean_clickstream)


@task(timeout="2m")
def transform_crm(raw):
    return _transform(raw, cleaning.clean_crm)


# ---------------------------------------------------------------------------------------------
# Load: a new warehouse file, swapped in atomically
# ---------------------------------------------------------------------------------------------

@task(produces=["clean_customers_py"], retries=1, retry_delay="5s", timeout="2m")
def load_to_warehouse(cleaned):
    """Its returned dict becomes the metadata of the clean_customers_py update Baton records
    when this task succeeds (record_count, schema_version)."""
    ex.begin()
    paths = {part["source"]: part["path"] for part in cleaned}
    final = ex.warehouse_path()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = bt.temp_path_for(final)
    if tmp.exists():
        tmp.unlink()
    db = sqlite3.connect(str(tmp))
    counts = {}
    with db:
        for table, (_, columns) in warehouse_loading.TABLES.items():
            counts[table] = warehouse_loading.load_csv(db, table, columns, paths[table])
        columns = ", ".join(f"{name} {kind}" for name, kind in warehouse_loading.contracts.CLEAN_CUSTOMERS_COLUMNS)
        db.execute(f"CREATE TABLE clean_customers ({columns}, PRIMARY KEY (customer_id))")
        db.execute(warehouse_loading.CLEAN_CUSTOMERS_SQL)
        counts["clean_customers"] = db.execute("SELECT COUNT(*) FROM clean_customers").fetchone()[0]
        newest = db.execute("SELECT MAX(m) FROM (SELECT MAX(created_at) AS m FROM transactions "
                            "UNION ALL SELECT MAX(ts) FROM clickstream)").fetchone()[0]
        as_of = bt.parse_ts(newest).replace(hour=0, minute=0, second=0) + timedelta(days=1)
        meta = {"schema_version": DATA_SLA["schema_version"], "loaded_at": bt.now_iso(),
                "logical_date": bt.logical_date(), "run_id": bt.run_id(), "data_as_of": bt.iso(as_of)}
        db.execute("CREATE TABLE _meta (key TEXT PRIMARY KEY, value TEXT)")
        db.executemany("INSERT INTO _meta VALUES (?, ?)", sorted(meta.items()))
    db.close()
    os.replace(tmp, final)  # readers see the old warehouse or the new one, never half of each
    for table, count in counts.items():
        print(f"loaded {count:5d} rows into {table}")
    return {"record_count": counts["clean_customers"], "schema_version": DATA_SLA["schema_version"],
            "warehouse_path": str(final), "tables": counts, "data_as_of": meta["data_as_of"]}


# ---------------------------------------------------------------------------------------------
# Catalog, and the event-based hand-off
# ---------------------------------------------------------------------------------------------

@task(timeout="1m")
def update_catalog():
    """Describes the warehouse in var/py/catalog/catalog.json, then tells the ML team: the
    lecture's `publish_event("data.customers.updated", {...})`, here under this version's
    event name. The id is per logical date, so a retry or a re-run announces it once."""
    ex.begin()
    db = bt.sqlite_readonly(ex.warehouse_path())
    tables = {name: db.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]
              for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name != '_meta'")}
    meta = dict(db.execute("SELECT key, value FROM _meta").fetchall())
    db.close()
    start, end = bt.data_interval()
    ex.atomic_write_json(ex.catalog_path(), {
        "warehouse": str(ex.warehouse_path()), "tables": tables, "sla": DATA_SLA,
        "schema_version": meta["schema_version"], "loaded_at": meta["loaded_at"],
        "data_interval": {"start": start, "end": end}, "updated_at": bt.now_iso()})
    print(f"catalog: {len(tables)} tables, clean_customers has {tables['clean_customers']} rows")

    # Data Engineering publishes
    answer = publish_event("data.customers_py.updated", {
        "timestamp": datetime.now(),
        "record_count": tables["clean_customers"],
        "schema_version": meta["schema_version"],
        "logical_date": bt.logical_date(),
    }, id=f"customers-py-{bt.logical_date()}", source="data_engineering")
    if answer.get("duplicate"):
        print(f"event customers-py-{bt.logical_date()} was already published; nothing new started")
    else:
        print(f"published data.customers_py.updated; started runs {answer.get('run_ids')}")
    ex.report_duration(owner="data_engineering")
    return {"tables": tables, "event_runs": answer.get("run_ids", [])}


# Data Engineering Pipeline
@dag(schedule="@hourly", owner="data_engineering")
def customer_data_pipeline():
    # Extract from source systems
    raw_transactions = extract_from_postgres()
    raw_clickstream = extract_from_kafka()
    raw_crm = extract_from_salesforce_api()

    # Transform and clean
    clean_transactions = transform_transactions(raw_transactions)
    clean_clickstream = transform_clickstream(raw_clickstream)
    clean_crm = transform_crm(raw_crm)

    # Load to data warehouse
    load_to_warehouse([clean_transactions, clean_clickstream, clean_crm])

    # Update data catalog
    update_catalog()

#!/usr/bin/env python3
"""Extract one source system into the raw layer of the data lake.

    python3 scripts/customer_data_pipeline/extract.py transactions|clickstream|crm

The bundled files in data/ stand in for the real systems:

    transactions  data/transactions.csv   <- Postgres  (SELECT * FROM transactions)
    clickstream   data/clickstream.jsonl  <- Kafka     (a dump of the clickstream topic)
    crm           data/crm.json           <- Salesforce REST API (a query response)

Extraction copies the source as-is (raw means untouched) to
var/lake/raw/<source>/<logical date>/ and reports what it saw.  The folder is
keyed by the run's logical date, so re-running the same interval replaces it.
"""

import hashlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402

SOURCES = {
    "transactions": ("transactions.csv", "postgres://shop/transactions"),
    "clickstream": ("clickstream.jsonl", "kafka://clickstream"),
    "crm": ("crm.json", "salesforce://Contact"),
}


def count_records(source: str, text: str) -> int:
    if source == "transactions":
        return max(0, len(text.splitlines()) - 1)          # minus the header
    if source == "clickstream":
        return sum(1 for line in text.splitlines() if line.strip())
    return len(json.loads(text).get("records", []))         # the API's records


def main():
    bt.begin()
    if len(sys.argv) != 2 or sys.argv[1] not in SOURCES:
        bt.fail(f"usage: extract.py {'|'.join(SOURCES)}")
    source = sys.argv[1]
    filename, system = SOURCES[source]

    source_dir = Path(bt.param("source_dir", "data"))
    if not source_dir.is_absolute():
        source_dir = bt.EXAMPLES_DIR / source_dir
    src = source_dir / filename
    if not src.is_file():
        bt.fail(f"source {system} unavailable: {src} does not exist")

    text = src.read_text(encoding="utf-8")
    dest = bt.var_dir() / "lake" / "raw" / source / bt.partition_key() / filename
    tmp = bt.temp_path_for(dest)
    shutil.copyfile(src, tmp)
    tmp.replace(dest)

    records = count_records(source, text)
    bt.log(f"extracted {records} {source} records from {system} -> {dest}")
    bt.write_output({
        "source": source,
        "system": system,
        "path": str(dest),
        "records": records,
        "bytes": len(text.encode()),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "extracted_at": bt.now_iso(),
    })


if __name__ == "__main__":
    main()

"""The hand-off points between the teams, in one place.

The lecture's advice is "clear contracts and communication at handoff
points".  These are the contracts the example pipelines share:

  data_engineering  --(warehouse table clean_customers)-->  feature pipeline
  feature pipeline  --(feature store table customer_features)--> ml_engineering
  ml_engineering    --(model registry: churn, alias champion)-->  mlops

Baton enforces the first two: pipelines/datasets.yaml declares the datasets
(owner, schema_version, freshness, availability), producing tasks declare
`produces:` and consuming tasks `requires:` (freshness, schema range).  This
module holds the same numbers for the scripts (the catalog, the warehouse's
_meta table) and the file locations.
"""

from baton_task import var_dir

# Data Engineering provides this guarantee (the lecture's DATA_SLA).
DATA_SLA = {
    "table": "clean_customers",
    "freshness": "1 hour",
    "availability": "99.9%",
    "schema_version": "2.3.0",
}
SCHEMA_VERSION = DATA_SLA["schema_version"]

# Columns of the clean_customers table, in order (name, SQLite type).
CLEAN_CUSTOMERS_COLUMNS = [
    ("customer_id", "TEXT"),
    ("name", "TEXT"),
    ("email", "TEXT"),
    ("country", "TEXT"),
    ("plan", "TEXT"),
    ("signup_date", "TEXT"),
    ("status", "TEXT"),
    ("total_spend", "REAL"),
    ("txn_count", "INTEGER"),
    ("first_purchase_at", "TEXT"),
    ("last_purchase_at", "TEXT"),
    ("clicks", "INTEGER"),
    ("sessions", "INTEGER"),
    ("last_seen_at", "TEXT"),
]

MODEL_NAME = "churn"
# MLOps serves it as this deployment (pipelines/deployments.yaml).
DEPLOYMENT = "churn"


def warehouse_path():
    return var_dir() / "warehouse" / "warehouse.sqlite"


def catalog_path():
    return var_dir() / "catalog" / "catalog.json"


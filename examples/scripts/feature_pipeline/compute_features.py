#!/usr/bin/env python3
"""Turn clean customer records into ML features (the part needing ML expertise).

Per customer (see scripts/common/churn_features.py): total spend, transaction
count, average basket, days since last purchase, clicks, sessions, and the
label `churned` (1 when the CRM status is 'cancelled').
"""

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "common"))
import baton_task as bt  # noqa: E402
from churn_features import FEATURES, LABEL, compute_features  # noqa: E402


def main():
    bt.begin()
    upstream = bt.require_input("get_from_warehouse")
    as_of = bt.parse_ts(upstream["data_as_of"])

    with open(upstream["snapshot_path"], newline="", encoding="utf-8") as f:
        rows = [compute_features(r, as_of) for r in csv.DictReader(f)]

    cols = ["customer_id"] + FEATURES + [LABEL]
    dest = bt.var_dir() / "feature_pipeline" / bt.partition_key() / "features.csv"
    tmp = bt.temp_path_for(dest)
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(dest)

    n = len(rows)
    means = {c: round(sum(float(r[c]) for r in rows) / n, 2) for c in FEATURES}
    churn_rate = round(sum(r[LABEL] for r in rows) / n, 4)
    bt.log(f"computed {len(FEATURES)} features for {n} customers as of {bt.iso(as_of)}; "
           f"churn rate {churn_rate:.1%}")
    for c in FEATURES:
        bt.log(f"  mean {c:26s} {means[c]:>10}")
    bt.write_output({
        "path": str(dest),
        "rows": n,
        "features": FEATURES,
        "label": LABEL,
        "churn_rate": churn_rate,
        "feature_means": means,
        "data_as_of": bt.iso(as_of),
    })


if __name__ == "__main__":
    main()

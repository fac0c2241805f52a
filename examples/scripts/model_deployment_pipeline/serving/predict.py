#!/usr/bin/env python3
"""Churn model server entry point (copied into every serving artifact).

    python3 predict.py < rows.jsonl > predictions.jsonl   # batch scoring
    python3 predict.py --health                            # model version check

Each input line is a JSON object with the model's features (and optionally a
customer_id), or just {"customer_id": "C0001"}: then the features come from
Baton's online feature store (feature service churn_model, at $BATON_SERVER or
--features-url URL), the same definitions training used. Each output line is
    {"customer_id": ..., "churn_probability": 0.42, "churn": false, "model_version": 3}
or {"customer_id": ..., "error": "..."} for a row that cannot be scored.
"""

import json
import os
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import churn_model  # noqa: E402  (copied next to this file)


FEATURE_SERVICE = "churn_model"


def online_features(url, customer_ids):
    """The latest features of each customer from Baton's online store, in one request."""
    body = json.dumps({"service": FEATURE_SERVICE,
                       "entities": [{"customer_id": customer} for customer in customer_ids]}).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get("BATON_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["BATON_TOKEN"]
    request = urllib.request.Request(url.rstrip("/") + "/api/v1/features/online", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.load(response)
    return {result["entity"]["customer_id"]: result["values"] for result in answer.get("results", [])}


def with_online_features(rows, model, url):
    """Fills in the features of rows that carry only a customer_id."""
    wanted = [row["customer_id"] for row in rows
              if isinstance(row, dict) and "customer_id" in row and not any(f in row for f in model["features"])]
    if not wanted:
        return rows
    if not url:
        raise SystemExit("rows without features need the online feature store: set BATON_SERVER or --features-url")
    found = online_features(url, wanted)
    filled = []
    for row in rows:
        values = found.get(row.get("customer_id")) if isinstance(row, dict) else None
        if values is not None and not any(f in row for f in model["features"]):
            missing = [f for f in model["features"] if values.get(f) is None]
            row = dict(row, **values) if not missing else dict(row, _missing=missing)
        filled.append(row)
    return filled


def main():
    model = churn_model.load_model(os.path.join(HERE, "model.json"))
    with open(os.path.join(HERE, "manifest.json")) as f:
        manifest = json.load(f)
    version = manifest["model_version"]
    if "--health" in sys.argv[1:]:
        print(json.dumps({"status": "ok", "model_version": version,
                          "algorithm": model["algorithm"],
                          "content_hash": manifest["content_hash"]}))
        return
    url = os.environ.get("BATON_SERVER")
    if "--features-url" in sys.argv[1:]:
        url = sys.argv[sys.argv.index("--features-url") + 1]
    parsed = []
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            parsed.append(json.loads(line))
        except ValueError as e:
            parsed.append(e)
    rows = with_online_features([row for row in parsed if not isinstance(row, Exception)], model, url)
    rows = iter(rows)
    for item in parsed:
        row = item if isinstance(item, Exception) else next(rows)
        customer = row.get("customer_id") if isinstance(row, dict) else None
        try:
            if isinstance(row, Exception):
                raise row
            if row.get("_missing"):
                raise ValueError(f"the online store has no value of {', '.join(row['_missing'])} for {customer}")
            result = dict(churn_model.predict(model, row), customer_id=customer,
                          model_version=version)
        except (ValueError, TypeError, AttributeError) as e:
            result = {"customer_id": customer, "error": str(e), "model_version": version}
        print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()

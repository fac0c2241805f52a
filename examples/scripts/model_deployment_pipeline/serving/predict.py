#!/usr/bin/env python3
"""Churn model server entry point (copied into every serving artifact).

    python3 predict.py < rows.jsonl > predictions.jsonl   # batch scoring
    python3 predict.py --health                            # model version check

Each input line is a JSON object with the model's features (and optionally a
customer_id); each output line is
    {"customer_id": ..., "churn_probability": 0.42, "churn": false, "model_version": 3}
or {"customer_id": ..., "error": "..."} for a row that cannot be scored.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import churn_model  # noqa: E402  (copied next to this file)


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
    for line in sys.stdin:
        if not line.strip():
            continue
        customer = None
        try:
            row = json.loads(line)
            customer = row.get("customer_id")
            result = dict(churn_model.predict(model, row), customer_id=customer,
                          model_version=version)
        except (ValueError, TypeError, AttributeError) as e:
            result = {"customer_id": customer, "error": str(e), "model_version": version}
        print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()

"""Churn model inference in pure Python.

A model is a JSON document.  This single file knows how to score all three
kinds the training flow produces, and is copied verbatim into the serving
artifact by build_serving_container, so training, evaluation and serving use
the same code.  It must not import anything outside the standard library.

Model JSON (common fields):
    {"algorithm": "gradient_boosted_stumps" | "logistic_regression" | "mlp",
     "features": [...], "threshold": 0.5,
     "preprocess": {"log1p": [...], "mean": [...], "std": [...]}, ...}
"""

import json
import math


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def raw_vector(model: dict, row: dict) -> list:
    """The row's features as floats, in the model's order."""
    vec = []
    for name in model["features"]:
        if name not in row or row[name] is None or row[name] == "":
            raise ValueError(f"missing feature {name!r}")
        value = float(row[name])
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"feature {name!r} is not finite")
        vec.append(value)
    return vec


def scaled_vector(model: dict, row: dict) -> list:
    """log1p on skewed features, then standardise with the training stats."""
    pre = model["preprocess"]
    logs = set(pre.get("log1p", []))
    out = []
    for i, (name, value) in enumerate(zip(model["features"], raw_vector(model, row))):
        if name in logs:
            value = math.log1p(max(value, 0.0))
        out.append((value - pre["mean"][i]) / pre["std"][i])
    return out


def score(model: dict, row: dict) -> float:
    """The model's raw score (log-odds) for one row."""
    kind = model["algorithm"]
    if kind == "gradient_boosted_stumps":
        x = raw_vector(model, row)
        z = model["base_score"]
        for s in model["stumps"]:
            z += s["left"] if x[s["feature"]] <= s["threshold"] else s["right"]
        return z
    if kind == "logistic_regression":
        x = scaled_vector(model, row)
        return model["bias"] + sum(w * v for w, v in zip(model["weights"], x))
    if kind == "mlp":
        x = scaled_vector(model, row)
        hidden = [math.tanh(b + sum(w * v for w, v in zip(ws, x)))
                  for ws, b in zip(model["w1"], model["b1"])]
        return model["b2"] + sum(w * h for w, h in zip(model["w2"], hidden))
    raise ValueError(f"unknown model algorithm {kind!r}")


def predict_proba(model: dict, row: dict) -> float:
    """Probability that the customer churns, in [0, 1]."""
    return sigmoid(score(model, row))


def predict(model: dict, row: dict) -> dict:
    p = predict_proba(model, row)
    return {"churn_probability": round(p, 6), "churn": p >= model.get("threshold", 0.5)}


def load_model(path) -> dict:
    with open(path) as f:
        return json.load(f)

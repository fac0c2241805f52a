#!/usr/bin/env python3
"""train_lightgbm: L2-regularised logistic regression by gradient descent.

The lecture's flow compares three candidate models.  Boosted trees are
already covered by train_xgboost, so this task keeps the lecture's name but
trains a different model family - a linear model on log-scaled, standardised
features - which gives evaluate_and_select a real choice to make.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import training  # noqa: E402
import baton_task as bt  # noqa: E402
from churn_model import scaled_vector, sigmoid  # noqa: E402


def fit(ds) -> dict:
    """Train on the dataset's train split; returns the model (without threshold)."""
    epochs = 300
    lr, l2 = 0.5, 1e-3

    model = {"algorithm": "logistic_regression", "features": ds.features,
             "preprocess": training.fit_preprocess(ds),
             "hyperparameters": {"epochs": epochs, "learning_rate": lr, "l2": l2}}
    X = [scaled_vector(model, r) for r in ds.train]
    y = ds.train_y
    n, d = len(X), len(ds.features)
    w, b = [0.0] * d, 0.0
    for _ in range(epochs):                     # full-batch gradient descent
        gw, gb = [0.0] * d, 0.0
        for x, yi in zip(X, y):
            err = sigmoid(b + sum(wj * xj for wj, xj in zip(w, x))) - yi
            gb += err
            for j in range(d):
                gw[j] += err * x[j]
        b -= lr * gb / n
        w = [wj - lr * (gj / n + l2 * wj) for wj, gj in zip(w, gw)]

    model.update({"weights": w, "bias": b})
    bt.log("weights (standardised log features): " +
           ", ".join(f"{f}={wj:+.2f}" for f, wj in zip(ds.features, w)))
    return model


def main():
    bt.begin()
    started = time.time()
    ds = training.load_dataset()
    training.finish("lightgbm", fit(ds), ds, started)


if __name__ == "__main__":
    main()

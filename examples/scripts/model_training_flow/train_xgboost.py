#!/usr/bin/env python3
"""train_xgboost: gradient-boosted decision stumps, in pure Python.

A small stand-in for XGBoost that keeps its core idea: an additive model of
trees fitted one after another to the gradient of the log-loss, with
Newton-step leaf values and L2 regularisation (lambda).  The trees are
depth-1 "stumps" and split candidates are feature quantiles.
"""

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import training  # noqa: E402
import baton_task as bt  # noqa: E402
from churn_model import sigmoid  # noqa: E402


def candidate_thresholds(values, n_bins):
    """Midpoints between distinct quantiles of a feature."""
    s = sorted(set(values))
    if len(s) <= n_bins:
        picks = s
    else:
        picks = sorted({s[int(i * (len(s) - 1) / n_bins)] for i in range(n_bins + 1)})
    return [(a + b) / 2 for a, b in zip(picks, picks[1:])]


def fit(ds) -> dict:
    """Boosted stumps on the dataset's train split; returns the model (without threshold)."""
    rounds = 60
    lr = 0.3
    lam = 1.0

    X = [[float(r[f]) for f in ds.features] for r in ds.train]
    y = ds.train_y
    n, d = len(X), len(ds.features)
    thresholds = [candidate_thresholds([x[j] for x in X], 16) for j in range(d)]
    # Pre-compute which bin every sample falls in, per feature (histogram trick).
    bins = [[sum(1 for t in thresholds[j] if x[j] > t) for x in X] for j in range(d)]

    pos = sum(y) / n
    base = math.log(pos / (1 - pos))
    scores = [base] * n
    stumps = []
    for _ in range(rounds):
        p = [sigmoid(s) for s in scores]
        g = [pi - yi for pi, yi in zip(p, y)]          # gradient of log-loss
        h = [max(pi * (1 - pi), 1e-6) for pi in p]     # hessian
        G, H = sum(g), sum(h)
        best = None
        for j in range(d):
            k = len(thresholds[j])
            gb, hb = [0.0] * (k + 1), [0.0] * (k + 1)
            for i in range(n):
                gb[bins[j][i]] += g[i]
                hb[bins[j][i]] += h[i]
            gl = hl = 0.0
            for b in range(k):                          # split after bin b
                gl += gb[b]
                hl += hb[b]
                gr, hr = G - gl, H - hl
                gain = gl * gl / (hl + lam) + gr * gr / (hr + lam) - G * G / (H + lam)
                if best is None or gain > best[0]:
                    best = (gain, j, b, -gl / (hl + lam), -gr / (hr + lam))
        if best is None or best[0] <= 1e-9:
            break
        _, j, b, left, right = best
        stumps.append({"feature": j, "threshold": thresholds[j][b],
                       "left": lr * left, "right": lr * right})
        for i in range(n):
            scores[i] += lr * (left if bins[j][i] <= b else right)

    model = {
        "algorithm": "gradient_boosted_stumps",
        "features": ds.features,
        "hyperparameters": {"rounds": rounds, "learning_rate": lr, "lambda": lam, "max_bins": 16},
        "base_score": base,
        "stumps": stumps,
        "preprocess": {"log1p": [], "mean": [], "std": []},   # trees need no scaling
    }
    return model


def main():
    bt.begin()
    started = time.time()
    ds = training.load_dataset()
    training.finish("xgboost", fit(ds), ds, started)


if __name__ == "__main__":
    main()

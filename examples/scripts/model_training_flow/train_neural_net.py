#!/usr/bin/env python3
"""train_neural_net: a tiny multi-layer perceptron, in pure Python.

One hidden layer of tanh units and a sigmoid output, trained with mini-batch
SGD with momentum on the log-loss.  Weights start from a seeded random
initialisation and batches are shuffled with a seeded generator, so training
is reproducible.
"""

import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import training  # noqa: E402
import baton_task as bt  # noqa: E402
from churn_model import scaled_vector, sigmoid  # noqa: E402


def fit(ds) -> dict:
    """The MLP trained on the dataset's train split; returns the model (without threshold)."""
    hidden = 8
    epochs = 60
    lr, momentum, l2, batch = 0.05, 0.9, 1e-4, 16
    rng = random.Random(42)

    model = {"algorithm": "mlp", "features": ds.features,
             "preprocess": training.fit_preprocess(ds),
             "hyperparameters": {"hidden_units": hidden, "activation": "tanh", "epochs": epochs,
                                 "learning_rate": lr, "momentum": momentum, "l2": l2,
                                 "batch_size": batch, "seed": 42}}
    X = [scaled_vector(model, r) for r in ds.train]
    y = ds.train_y
    d = len(ds.features)
    scale = 1 / math.sqrt(d)
    w1 = [[rng.gauss(0, scale) for _ in range(d)] for _ in range(hidden)]
    b1 = [0.0] * hidden
    w2 = [rng.gauss(0, 1 / math.sqrt(hidden)) for _ in range(hidden)]
    b2 = 0.0
    vw1 = [[0.0] * d for _ in range(hidden)]
    vb1, vw2, vb2 = [0.0] * hidden, [0.0] * hidden, 0.0

    order = list(range(len(X)))
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            gw1 = [[0.0] * d for _ in range(hidden)]
            gb1, gw2, gb2 = [0.0] * hidden, [0.0] * hidden, 0.0
            for i in idx:
                x = X[i]
                h = [math.tanh(b + sum(wk * xk for wk, xk in zip(ws, x))) for ws, b in zip(w1, b1)]
                err = sigmoid(b2 + sum(a * hk for a, hk in zip(w2, h))) - y[i]   # dLoss/dz
                gb2 += err
                for k in range(hidden):
                    gw2[k] += err * h[k]
                    dh = err * w2[k] * (1 - h[k] * h[k])                    # back through tanh
                    gb1[k] += dh
                    row = gw1[k]
                    for j in range(d):
                        row[j] += dh * x[j]
            m = len(idx)
            vb2 = momentum * vb2 - lr * gb2 / m
            b2 += vb2
            for k in range(hidden):
                vw2[k] = momentum * vw2[k] - lr * (gw2[k] / m + l2 * w2[k])
                w2[k] += vw2[k]
                vb1[k] = momentum * vb1[k] - lr * gb1[k] / m
                b1[k] += vb1[k]
                for j in range(d):
                    vw1[k][j] = momentum * vw1[k][j] - lr * (gw1[k][j] / m + l2 * w1[k][j])
                    w1[k][j] += vw1[k][j]

    model.update({"w1": w1, "b1": b1, "w2": w2, "b2": b2})
    return model


def main():
    bt.begin()
    started = time.time()
    ds = training.load_dataset()
    training.finish("neural_net", fit(ds), ds, started)


if __name__ == "__main__":
    main()

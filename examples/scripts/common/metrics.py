"""Binary classification metrics in pure Python."""

import math


def confusion(y_true, y_pred):
    tp = sum(1 for t, p in zip(y_true, y_pred) if t == 1 and p == 1)
    fp = sum(1 for t, p in zip(y_true, y_pred) if t == 0 and p == 1)
    fn = sum(1 for t, p in zip(y_true, y_pred) if t == 1 and p == 0)
    tn = sum(1 for t, p in zip(y_true, y_pred) if t == 0 and p == 0)
    return tp, fp, fn, tn


def f1_score(y_true, y_pred) -> float:
    tp, fp, fn, _ = confusion(y_true, y_pred)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def auc(y_true, scores) -> float:
    """Area under the ROC curve via the rank-sum formula (ties get mid-ranks)."""
    pairs = sorted(zip(scores, y_true))
    ranks = [0.0] * len(pairs)
    i = 0
    while i < len(pairs):
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2.0 + 1.0
        i = j + 1
    pos = sum(1 for _, t in pairs if t == 1)
    neg = len(pairs) - pos
    if pos == 0 or neg == 0:
        return 0.5
    rank_sum = sum(r for r, (_, t) in zip(ranks, pairs) if t == 1)
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def log_loss(y_true, probs) -> float:
    eps = 1e-12
    return -sum(t * math.log(max(p, eps)) + (1 - t) * math.log(max(1 - p, eps))
                for t, p in zip(y_true, probs)) / max(1, len(y_true))


def classification_report(y_true, probs, threshold=0.5) -> dict:
    y_pred = [1 if p >= threshold else 0 for p in probs]
    tp, fp, fn, tn = confusion(y_true, y_pred)
    n = max(1, len(y_true))
    return {
        "accuracy": round((tp + tn) / n, 4),
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
        "f1": round(f1_score(y_true, y_pred), 4),
        "auc": round(auc(y_true, probs), 4),
        "log_loss": round(log_loss(y_true, probs), 4),
        "n": len(y_true),
    }


def best_f1_threshold(y_true, probs) -> float:
    """Decision threshold that maximises F1 (chosen on training data only)."""
    best_t, best_f = 0.5, -1.0
    for t in [i / 100.0 for i in range(5, 96)]:
        f = f1_score(y_true, [1 if p >= t else 0 for p in probs])
        if f > best_f:
            best_t, best_f = t, f
    return best_t

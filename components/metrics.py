"""Classification metrics, one implementation for baselines, live monitoring and the canary.

A model's score is P(label = 1); the decision rule that turns it into a class lives here
and nowhere else (:data:`DECISION_THRESHOLD`, :func:`predicted_class`, :func:`correct`).
The training gate's baseline metrics (``components.training.evaluate``, registered with
the model), the performance monitors (``components.monitor.performance``) and the
canary's labelled checks all call this module, so a baseline and the live value it is
compared with are the same computation.

Every function takes 0/1 labels and scores as array-likes of the same length and returns
NaN where the metric is undefined (no rows, AUC with one class, precision with no
positive prediction).

>>> predicted_class([0.2, 0.5, 0.9]).tolist()
[0, 1, 1]
>>> correct([0, 1, 0], [0.2, 0.5, 0.9]).tolist()
[True, True, False]
>>> m = binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
>>> m["accuracy"], m["auc"], m["gini"], m["n"]
(0.75, 0.75, 0.5, 4)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DECISION_THRESHOLD = 0.5  # score >= threshold predicts class 1
# Every metric a performance monitor or the training gate can name.
METRICS = ("accuracy", "precision", "recall", "auc", "gini", "log_loss", "calibration_error", "ctr")
LOWER_IS_BETTER = frozenset({"log_loss", "calibration_error"})
# Scores are clipped to [EPS, 1 - EPS] for log loss, so a confident miss costs ln(1/EPS)
# (about 16) instead of infinity.
LOG_LOSS_EPS = 1e-7
CALIBRATION_BINS = 10


def _arrays(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(labels, dtype=float).ravel().astype(int), np.asarray(scores, dtype=float).ravel()


def predicted_class(scores: Any, threshold: float = DECISION_THRESHOLD) -> np.ndarray:
    """The predicted class (0/1) of each score."""
    return (np.asarray(scores, dtype=float) >= threshold).astype(int)


def correct(labels: Any, scores: Any, threshold: float = DECISION_THRESHOLD) -> np.ndarray:
    """Whether each prediction matches its 0/1 label (the error stream is ``~correct``)."""
    return predicted_class(scores, threshold) == np.asarray(labels, dtype=float).astype(int)


def accuracy(labels: Any, scores: Any, threshold: float = DECISION_THRESHOLD) -> float:
    """Share of rows whose predicted class equals the label.

    >>> accuracy([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.1])
    0.75
    """
    right = correct(labels, scores, threshold)
    return float(right.mean()) if right.size else math.nan


def precision(labels: Any, scores: Any, threshold: float = DECISION_THRESHOLD) -> float:
    """Share of predicted positives that are positive; NaN with no positive prediction.

    >>> precision([0, 1, 1, 0], [0.6, 0.7, 0.4, 0.1])
    0.5
    """
    y, s = _arrays(labels, scores)
    pred = s >= threshold
    return float((pred & (y == 1)).sum() / pred.sum()) if pred.any() else math.nan


def recall(labels: Any, scores: Any, threshold: float = DECISION_THRESHOLD) -> float:
    """Share of positives predicted positive; NaN with no positive label.

    >>> recall([0, 1, 1, 0], [0.6, 0.7, 0.4, 0.1])
    0.5
    """
    y, s = _arrays(labels, scores)
    pos = y == 1
    return float(((s >= threshold) & pos).sum() / pos.sum()) if pos.any() else math.nan


def midranks(values: Any) -> np.ndarray:
    """1-based ranks with ties sharing their mean rank (the Mann-Whitney convention).

    >>> midranks([0.3, 0.1, 0.3]).tolist()
    [2.5, 1.0, 2.5]
    """
    from scipy.stats import rankdata

    return rankdata(np.asarray(values, dtype=float), method="average")


def auc(labels: Any, scores: Any) -> float:
    """ROC AUC by midranks (the Mann-Whitney U / (n_pos n_neg)); tied scores count half.

    NaN when only one class is present.

    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> auc([0, 1], [0.5, 0.5]), math.isnan(auc([1, 1], [0.2, 0.9]))
    (0.5, True)
    """
    y, s = _arrays(labels, scores)
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return math.nan
    ranks = midranks(s)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def gini(labels: Any, scores: Any) -> float:
    """The Gini coefficient ``2 AUC - 1`` (credit scoring's name for the same ranking power).

    >>> gini([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.5
    """
    return 2 * auc(labels, scores) - 1


def log_loss(labels: Any, scores: Any, eps: float = LOG_LOSS_EPS) -> float:
    """Mean negative log-likelihood of the labels, scores clipped to ``[eps, 1 - eps]``.

    >>> round(log_loss([0, 1], [0.2, 0.9]), 4)
    0.1643
    """
    y, s = _arrays(labels, scores)
    if not len(y):
        return math.nan
    p = np.clip(s, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibration_error(labels: Any, scores: Any, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error over ``bins`` equal-width score bins.

    ``sum_b (n_b / N) |mean(label_b) - mean(score_b)|``; a score of exactly ``k / bins``
    falls in bin ``k`` (the last bin is closed).

    >>> calibration_error([0, 1, 1, 1], [0.05, 0.95, 0.95, 0.95])
    0.05
    """
    y, s = _arrays(labels, scores)
    if not len(y):
        return math.nan
    idx = np.clip((s * bins).astype(int), 0, bins - 1)
    # sum_b (n_b / N) |mean(y_b) - mean(s_b)| == sum_b |sum(y_b) - sum(s_b)| / N
    gap = np.abs(np.bincount(idx, weights=y, minlength=bins) - np.bincount(idx, weights=s, minlength=bins))
    return float(round(gap.sum() / len(y), 12))


def binary_metrics(labels: Any, scores: Any, threshold: float = DECISION_THRESHOLD) -> dict[str, float]:
    """Every metric in :data:`METRICS`, plus ``n`` and ``positive_rate`` (the label mean).

    ``ctr`` is the positive-label rate too (a click-through rate when the label is a click).

    >>> m = binary_metrics([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.1])
    >>> sorted(m) == sorted([*METRICS, "n", "positive_rate"]), m["recall"], m["precision"]
    (True, 0.5, 1.0)
    """
    y, s = _arrays(labels, scores)
    n = len(y)
    rate = float(y.mean()) if n else math.nan
    area = auc(y, s) if n else math.nan
    return {
        "n": n,
        "positive_rate": rate,
        "accuracy": accuracy(y, s, threshold),
        "precision": precision(y, s, threshold),
        "recall": recall(y, s, threshold),
        "auc": area,
        "gini": 2 * area - 1,
        "log_loss": log_loss(y, s),
        "calibration_error": calibration_error(y, s),
        "ctr": rate,
    }

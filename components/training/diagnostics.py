"""A model's ROC curve and confusion matrix on the holdout, for the dashboard (KFP ClassificationMetrics).

The class decision uses the one 0.5 rule of :mod:`components.metrics`.

>>> confusion_matrix([0, 1, 1], [0.2, 0.9, 0.4])
[[1, 0], [1, 1]]
"""

from __future__ import annotations

from typing import Any

from components.metrics import DECISION_THRESHOLD, predicted_class


def roc_points(y: Any, p: Any, points: int = 50) -> tuple[list[float], list[float], list[float]]:
    """A thinned ROC curve (fpr, tpr, threshold) of at most ``points`` points.

    >>> fpr, tpr, thr = roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr[0], tpr[-1], len(fpr) == len(tpr) == len(thr)
    (0.0, 1.0, True)
    """
    import numpy as np
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(np.asarray(y, dtype=int), np.asarray(p, dtype=float))
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).astype(int))
    thr = np.clip(thr[keep], 0.0, 1.0)  # sklearn's first threshold is +inf
    return [float(x) for x in fpr[keep]], [float(x) for x in tpr[keep]], [float(x) for x in thr]


def confusion_matrix(y: Any, p: Any, threshold: float = DECISION_THRESHOLD) -> list[list[int]]:
    """The 2x2 confusion matrix (rows: true 0/1, columns: predicted 0/1).

    >>> confusion_matrix([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.2])
    [[1, 1], [1, 1]]
    """
    import numpy as np

    y, pred = np.asarray(y, dtype=int), predicted_class(p, threshold)
    return [[int(((y == t) & (pred == q)).sum()) for q in (0, 1)] for t in (0, 1)]

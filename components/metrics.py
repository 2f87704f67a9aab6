"""Classification metrics, one implementation for baselines, live monitoring and the canary.

A model's score is P(label = 1); the decision rule that turns it into a class lives here
and nowhere else (:data:`DECISION_THRESHOLD`, :func:`predicted_class`, :func:`correct`).
The registry's baseline metrics (computed at training time), the performance monitors
and the canary's labelled checks all call this module, so a baseline and the live value
it is compared with are the same computation.

>>> predicted_class([0.2, 0.5, 0.9]).tolist()
[0, 1, 1]
>>> correct([0, 1, 0], [0.2, 0.5, 0.9]).tolist()
[True, True, False]
"""

from __future__ import annotations

from typing import Any

import numpy as np

DECISION_THRESHOLD = 0.5  # score >= threshold predicts class 1


def predicted_class(scores: Any, threshold: float = DECISION_THRESHOLD) -> np.ndarray:
    """The predicted class (0/1) of each score."""
    return (np.asarray(scores, dtype=float) >= threshold).astype(int)


def correct(labels: Any, scores: Any, threshold: float = DECISION_THRESHOLD) -> np.ndarray:
    """Whether each prediction matches its 0/1 label (the error stream is ``~correct``)."""
    return predicted_class(scores, threshold) == np.asarray(labels, dtype=float).astype(int)

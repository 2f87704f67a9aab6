"""components.metrics: agreement with scikit-learn, and one computation behind baselines and live values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, log_loss, precision_score, recall_score, roc_auc_score

from components import metrics
from components.monitor.performance import compute_metrics, metric_check
from components.policy import policy_from_dict
from components.training.evaluate import score

pytestmark = pytest.mark.unit


def _scored(seed: int, n: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    s = 1 / (1 + np.exp(-(2.5 * (y - 0.35) + rng.normal(0, 1, n))))
    if ties:  # scores rounded to a coarse grid: many ties across the two classes
        s = np.round(s, 1)
    return y, s


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_agrees_with_sklearn_on_random_data(seed: int, ties: bool) -> None:
    y, s = _scored(seed, 1500, ties)
    pred = (s >= 0.5).astype(int)
    assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert metrics.gini(y, s) == pytest.approx(2 * roc_auc_score(y, s) - 1, abs=1e-12)
    assert metrics.accuracy(y, s) == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert metrics.precision(y, s) == pytest.approx(precision_score(y, pred), abs=1e-12)
    assert metrics.recall(y, s) == pytest.approx(recall_score(y, pred), abs=1e-12)
    clipped = np.clip(s, metrics.LOG_LOSS_EPS, 1 - metrics.LOG_LOSS_EPS)
    assert metrics.log_loss(y, s) == pytest.approx(log_loss(y, clipped), abs=1e-12)


def test_calibration_error_by_hand_and_by_behaviour() -> None:
    # bins [0, .1) and [.9, 1]: |0 - .05| * 1/4 + |1 - .95| * 3/4 = 0.05
    assert metrics.calibration_error([0, 1, 1, 1], [0.05, 0.95, 0.95, 0.95]) == pytest.approx(0.05)
    rng = np.random.default_rng(4)
    p = rng.random(20_000)
    y = (rng.random(20_000) < p).astype(int)  # calibrated by construction
    assert metrics.calibration_error(y, p) < 0.02
    assert metrics.calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.15
    # a score on a bin edge goes to the bin above it, and 1.0 to the last bin
    assert metrics.calibration_error([1, 1], [0.3, 1.0]) == pytest.approx((0.7 + 0.0) / 2)


def test_undefined_metrics_are_nan() -> None:
    assert math.isnan(metrics.auc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert math.isnan(metrics.precision([0, 1], [0.1, 0.2]))
    assert math.isnan(metrics.recall([0, 0], [0.1, 0.7]))
    empty = metrics.binary_metrics([], [])
    assert empty["n"] == 0 and all(math.isnan(empty[m]) for m in metrics.METRICS)


def test_baseline_equals_live_value_on_the_same_rows() -> None:
    """The gate's registered baseline (evaluate.score) and the performance monitor's live
    value (compute_metrics / metric_check) are one computation on the same data."""
    y, s = _scored(7, 2000, ties=True)
    seg = np.where(np.arange(len(y)) % 3 == 0, "a", "b")
    policy = policy_from_dict({
        "model": "m", "entity": "id", "label": "y", "features": ["x"], "segments": {"column": "seg", "values": ["a", "b"]},
        "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.5}],
    })

    class Fixed:
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return s[frame.index.to_numpy()]

    holdout = pd.DataFrame({"x": s, "y": y, "seg": seg})
    baseline = score(policy, Fixed(), holdout)
    live = compute_metrics(y, s)
    for metric in metrics.METRICS:
        assert baseline["overall"][metric] == live[metric], metric
        check = metric_check(y, s, metric, baseline=baseline["overall"][metric], max_relative_drop=0.01, min_samples=10)
        assert check.statistic == baseline["overall"][metric] and check.details["relative_drop"] == 0.0
    for name in ("a", "b"):
        mask = seg == name
        assert baseline["segments"][name]["auc"] == compute_metrics(y[mask], s[mask])["auc"]

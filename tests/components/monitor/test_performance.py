"""Performance metrics and checks: values against scikit-learn, intervals, limits, insufficient data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, precision_score, recall_score, roc_auc_score

from components.errors import ConfigError, DataError
from components.monitor.performance import (
    compute_metrics,
    delong_interval,
    metric_check,
    wilson_interval,
)

pytestmark = pytest.mark.unit


def scored(rng: np.random.Generator, n: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.3).astype(int)
    score = 1 / (1 + np.exp(-(signal * (y - 0.3) * 4 + rng.normal(0, 1, n))))
    return y, score


def test_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y, s = scored(rng, 3000, 1.0)
    m = compute_metrics(y, s, threshold=0.5)
    pred = (s >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(precision_score(y, pred))
    assert m["recall"] == pytest.approx(recall_score(y, pred))
    assert m["auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["gini"] == pytest.approx(2 * roc_auc_score(y, s) - 1)
    assert m["log_loss"] == pytest.approx(log_loss(y, s))
    assert m["ctr"] == pytest.approx(y.mean()) and m["n"] == 3000


def test_calibration_error_of_a_calibrated_and_a_biased_model() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 20_000)
    y = (rng.random(20_000) < p).astype(int)
    assert compute_metrics(y, p)["calibration_error"] < 0.02
    assert compute_metrics(y, np.clip(p + 0.2, 0, 1))["calibration_error"] > 0.15


def test_missing_labels_are_dropped_and_counted() -> None:
    rng = np.random.default_rng(2)
    y, s = scored(rng, 500, 1.0)
    y = y.astype(float)
    y[:40] = np.nan
    m = compute_metrics(y, s)
    assert m["n"] == 460 and m["missing_labels"] == 40
    assert m["auc"] == pytest.approx(roc_auc_score(y[40:], s[40:]))


def test_intervals_cover_at_about_their_level() -> None:
    lo, hi = wilson_interval(0, 50)
    assert lo == pytest.approx(0, abs=1e-12) and 0 < hi < 0.1
    rng = np.random.default_rng(3)
    true_auc = 0.8367  # P(0.3 + U(0, .7) > U(0, .7))
    covered = 0
    for _ in range(200):
        y = rng.integers(0, 2, 300)
        s = np.clip(0.3 * y + rng.uniform(0, 0.7, 300), 0, 1)
        _, lo, hi = delong_interval(y, s)
        covered += lo <= true_auc <= hi
    assert 0.9 <= covered / 200 <= 0.99


def test_accuracy_floor_fires_only_when_confidently_below() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 2000)

    def with_accuracy(acc: float) -> np.ndarray:
        right = rng.random(2000) < acc
        return np.where(right, y, 1 - y).astype(float)

    low = metric_check(y, with_accuracy(0.80), "accuracy", min=0.85, min_samples=200)
    assert low.drift and low.details["ci_high"] < 0.85 and low.details["ci_method"] == "wilson"
    assert low.threshold == 0.85 and "accuracy" in low.details["reasons"][0]
    assert not metric_check(y, with_accuracy(0.90), "accuracy", min=0.85).drift
    # Just under the floor: the point estimate is below, the interval is not wholly below.
    near = metric_check(y[:300], with_accuracy(0.84)[:300], "accuracy", min=0.85)
    assert not near.drift
    assert metric_check(y[:300], with_accuracy(0.80)[:300], "accuracy", min=0.85, decision="point").drift


def test_relative_gini_drop_against_baseline() -> None:
    rng = np.random.default_rng(5)
    y, good = scored(rng, 3000, 1.0)
    baseline = compute_metrics(y, good)["gini"]
    y2, worse = scored(rng, 3000, 0.6)
    r = metric_check(y2, worse, "gini", baseline=baseline, max_relative_drop=0.05)
    assert r.drift and r.details["relative_drop"] > 0.05 and r.details["ci_method"] == "delong"
    assert r.threshold == pytest.approx(baseline * 0.95)
    y3, same = scored(rng, 3000, 1.0)
    assert not metric_check(y3, same, "gini", baseline=baseline, max_relative_drop=0.05).drift


def test_log_loss_ceiling_uses_a_seeded_bootstrap() -> None:
    rng = np.random.default_rng(6)
    y, s = scored(rng, 1000, 0.2)
    a = metric_check(y, s, "log_loss", max=0.3)
    b = metric_check(y, s, "log_loss", max=0.3)
    assert a.drift and a.details["ci_method"] == "bootstrap"
    assert (a.details["ci_low"], a.details["ci_high"]) == (b.details["ci_low"], b.details["ci_high"])
    assert not metric_check(y, s, "log_loss", max=5.0).drift


def test_insufficient_data() -> None:
    rng = np.random.default_rng(7)
    y, s = scored(rng, 80, 1.0)
    r = metric_check(y, s, "accuracy", min=0.99, min_samples=100)
    assert r.status == "insufficient_data" and not r.drift and "80 labelled rows" in r.details["reason"]
    one_class = metric_check(np.zeros(500), rng.random(500), "auc", min=0.7)
    assert one_class.status == "insufficient_data" and not one_class.drift


def test_bad_input_and_settings() -> None:
    with pytest.raises(DataError, match="y_true has 3 rows but y_score has 2"):
        compute_metrics([0, 1, 1], [0.2, 0.4])
    with pytest.raises(DataError, match="binary"):
        compute_metrics([0, 2], [0.2, 0.4])
    with pytest.raises(DataError, match="probabilities"):
        compute_metrics([0, 1], [0.2, 1.4])
    with pytest.raises(ConfigError, match="unknown metric"):
        metric_check([0, 1], [0.2, 0.4], "f1", min=0.5)
    with pytest.raises(ConfigError, match="needs a baseline"):
        metric_check([0, 1], [0.2, 0.4], "auc", max_relative_drop=0.1)
    with pytest.raises(ConfigError, match="no limit"):
        metric_check([0, 1], [0.2, 0.4], "auc")

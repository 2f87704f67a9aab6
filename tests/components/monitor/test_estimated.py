"""CBPE: estimates track realised metrics without labels, stay quiet when nothing changed,
fire when the score distribution moves into the model's weak region, and admit their blind spot."""

from __future__ import annotations

import numpy as np
import pytest

from components.errors import DataError
from components.monitor.estimated import (
    ESTIMABLE,
    expected_metrics,
    fit_estimator,
    realised_metrics,
)

pytestmark = pytest.mark.unit


def _world(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One feature x, a model scoring sigmoid(2x), labels drawn from the true P(y|x); shift moves x."""
    x = rng.normal(shift, 1.0, n)
    p_true = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < p_true).astype(int)
    return y, p_true


@pytest.mark.parametrize("metric", ESTIMABLE)
def test_estimate_tracks_realised_under_covariate_shift(metric: str) -> None:
    errors = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        y_ref, s_ref = _world(rng, 5000)
        est = fit_estimator(y_ref, s_ref, seed=seed)
        y_cur, s_cur = _world(rng, 2000, shift=-0.8)  # inputs move; P(y|x) does not
        estimate = expected_metrics(est.calibration(s_cur), s_cur)[metric]
        errors.append(abs(estimate - realised_metrics(y_cur, s_cur)[metric]))
    assert np.mean(errors) < 0.03, f"{metric}: mean abs error {np.mean(errors):.3f}"


def test_calibration_repairs_miscalibrated_scores() -> None:
    rng = np.random.default_rng(3)
    y_ref, p_ref = _world(rng, 6000)
    y_cur, p_cur = _world(rng, 3000, shift=0.7)
    squash = lambda p: p**3  # noqa: E731 - a monotone distortion: ranks kept, probabilities wrong
    est = fit_estimator(y_ref, squash(p_ref))
    calibrated = expected_metrics(est.calibration(squash(p_cur)), squash(p_cur))["accuracy"]
    naive = expected_metrics(squash(p_cur), squash(p_cur))["accuracy"]
    realised = realised_metrics(y_cur, squash(p_cur))["accuracy"]
    assert abs(calibrated - realised) < 0.02
    assert abs(naive - realised) > 0.05, "the distortion is meant to be large enough to matter"
    assert est.calibration.holdout_ece < est.calibration.holdout_ece_raw


def test_false_alarms_and_detection_over_seeds() -> None:
    quiet = fired = 0
    for seed in range(50):
        rng = np.random.default_rng(100 + seed)
        y_ref, s_ref = _world(rng, 5000)
        est = fit_estimator(y_ref, s_ref, seed=seed)
        from components.monitor.estimated import estimate_check

        _, s_same = _world(rng, 1000)
        quiet += estimate_check(est, s_same, "accuracy", max_relative_drop=0.1).drift
        x = rng.normal(0.0, 0.25, 1000)  # inputs crowd the decision boundary: the model gets worse
        fired += estimate_check(est, 1 / (1 + np.exp(-2 * x)), "accuracy", max_relative_drop=0.1).drift
    assert quiet <= 2, f"{quiet}/50 false alarms on unchanged windows (3-sigma band: ~0 expected)"
    assert fired >= 48, f"detected in {fired}/50 windows"


def test_window_without_labels_is_valid_and_labels_add_the_realised_value() -> None:
    from components.monitor.estimated import estimate_check

    rng = np.random.default_rng(5)
    y_ref, s_ref = _world(rng, 4000)
    est = fit_estimator(y_ref, s_ref)
    y_cur, s_cur = _world(rng, 1500)
    blind = estimate_check(est, s_cur, "auc", min=0.6)
    assert blind.status == "ok" and blind.details["realised"] is None
    assert blind.details["lower"] < blind.statistic < blind.details["upper"]
    partial = y_cur.astype(float)
    partial[::2] = np.nan  # half the labels have not arrived yet
    seen = estimate_check(est, s_cur, "auc", labels=partial, min=0.6)
    assert seen.details["labelled"] == 750
    assert abs(seen.details["error"]) < 0.05 and seen.details["realised"] == pytest.approx(seen.statistic - seen.details["error"])


def test_pure_concept_drift_is_the_blind_spot_and_the_error_stream_catches_it() -> None:
    from components.metrics import correct
    from components.monitor.concept import detect_on_stream
    from components.monitor.estimated import estimate_check

    rng = np.random.default_rng(7)
    y_ref, s_ref = _world(rng, 6000)
    est = fit_estimator(y_ref, s_ref)
    y_cur, s_cur = _world(rng, 4000)
    flipped = (s_cur > 0.7) & (rng.random(4000) < 0.6)  # P(y|x) moves where the model is confident
    y_cur = np.where(flipped, 1 - y_cur, y_cur)
    check = estimate_check(est, s_cur, "accuracy", labels=y_cur, max_relative_drop=0.05)
    assert not check.drift, "scores did not move, so the estimate cannot see the change"
    assert check.details["realised"] < est.baseline["accuracy"] - 0.1, "yet the model really got worse"
    assert "concept drift" in check.details["blind_spot"]
    errors_ref = (~correct(y_ref, s_ref)).astype(int)
    errors_cur = (~correct(y_cur, s_cur)).astype(int)
    result = detect_on_stream(np.r_[errors_ref[-2000:], errors_cur], detector="page_hinkley", reference_errors=errors_ref)
    assert result.drift, "the labelled error stream must catch what the estimate cannot"


def test_untrustworthy_calibration_is_flagged() -> None:
    from components.monitor.estimated import estimate_check

    rng = np.random.default_rng(11)
    s = rng.random(5000)
    y = (rng.random(5000) < np.where(np.abs(s - 0.5) < 0.2, 0.9, 0.1)).astype(int)  # not monotone in the score
    est = fit_estimator(y, s)
    assert not est.calibration.trusted
    assert "poorly calibrated" in estimate_check(est, s[:1000], "accuracy", min=0.5).details["warning"]


def test_bad_input_names_the_fix() -> None:
    rng = np.random.default_rng(0)
    y, s = _world(rng, 1000)
    with pytest.raises(DataError, match="at least 200"):
        fit_estimator(y[:50], s[:50])
    with pytest.raises(DataError, match="probabilities"):
        fit_estimator(y, s * 2)
    from components.monitor.estimated import estimate_check

    est = fit_estimator(y, s)
    with pytest.raises(DataError, match="without a prediction"):
        estimate_check(est, np.r_[s[:10], np.nan], "accuracy", min=0.5)
    with pytest.raises(DataError, match="cannot be estimated"):
        estimate_check(est, s, "log_loss", min=0.5)
    assert estimate_check(est, s[:20], "accuracy", min=0.5).status == "insufficient_data"


def _frames(seed: int, shift: float, with_labels: bool) -> tuple:
    import pandas as pd

    rng = np.random.default_rng(seed)
    frames = []
    for n, sh, start in ((4000, 0.0, "2025-01-01"), (1500, shift, "2025-02-01")):
        x = rng.normal(sh, 1.0, n)
        p = 1 / (1 + np.exp(-2 * x))
        frames.append(pd.DataFrame({"id": np.arange(n), "ts": pd.date_range(start, periods=n, freq="min", tz="UTC"), "x": x,
                                    "y": (rng.random(n) < p).astype(int), "prediction": p}))
    ref, cur = frames
    return ref, cur if with_labels else cur.drop(columns=["y"])


def _policy():
    from components.policy import policy_from_dict

    return policy_from_dict({"model": "m", "entity": "id", "timestamp": "ts", "label": "y", "features": ["x"],
                             "monitors": [{"name": "est_acc", "type": "estimated_performance", "metric": "accuracy", "max_relative_drop": 0.08}],
                             "actions": [{"when": ["est_acc"], "strategy": "full"}]})


def test_engine_fires_without_a_label_column_and_reports_the_band() -> None:
    from components.monitor.engine import run_monitors

    quiet = run_monitors(_policy(), *_frames(0, 0.0, with_labels=False))
    assert not quiet.monitor("est_acc")["fired"]
    ref, cur = _frames(0, 0.0, with_labels=False)
    crowded = cur.assign(x=cur["x"] * 0.15, prediction=1 / (1 + np.exp(-2 * cur["x"] * 0.15)))  # inputs crowd the boundary
    report = run_monitors(_policy(), ref, crowded)
    entry = report.monitor("est_acc")
    assert entry["fired"] and "estimated accuracy" in entry["summary"]
    (result,) = [r if isinstance(r, dict) else r.to_dict() for r in entry["results"]]
    assert result["lower"] < result["statistic"] < result["upper"] and result["realised"] is None
    assert "concept drift" in entry["blind_spot"]


def test_engine_shows_estimate_and_realised_side_by_side_once_labels_land() -> None:
    import json

    from components.monitor.engine import run_monitors

    report = run_monitors(_policy(), *_frames(1, -0.5, with_labels=True))
    (result,) = json.loads(report.to_json())["monitors"][0]["results"]
    assert result["realised"] is not None and abs(result["statistic"] - result["realised"]) < 0.04
    assert abs(result["details"]["error"]) < 0.04


@pytest.mark.parametrize("seed", range(5))
def test_calibration_never_worse_than_the_raw_scores_on_held_out(seed: int) -> None:
    from components.monitor.estimated import fit_calibration

    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-2 * rng.normal(size=8000)))
    y = (rng.random(8000) < p).astype(int)
    cal = fit_calibration(y, p, seed=seed)
    assert cal.holdout_ece <= cal.holdout_ece_raw

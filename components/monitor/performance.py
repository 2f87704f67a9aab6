"""Model performance on labelled windows: metrics, confidence intervals and threshold checks.

:func:`metric_check` fires only when the confidence interval lies wholly on the wrong side
of the limit (``decision="ci"``, the default), so a window whose metric is merely noisy
around the limit does not trigger a retrain; ``decision="point"`` compares the point
estimate instead. Intervals: Wilson for proportions (accuracy, precision, recall, ctr),
DeLong for AUC and Gini, a seeded bootstrap for log loss and calibration error.

>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 2000)
>>> score = np.clip(0.5 * y + rng.normal(0.25, 0.2, 2000), 0, 1)
>>> m = compute_metrics(y, score)
>>> round(m["auc"], 3), round(m["gini"], 3), m["n"]
(0.966, 0.932, 2000)
"""

from __future__ import annotations

import builtins  # min/max parameters shadow the builtins in metric_check
import math
from typing import Any

import numpy as np

from components.errors import ConfigError, DataError
from components.metrics import (
    DECISION_THRESHOLD,
    LOWER_IS_BETTER,
    METRICS,
    binary_metrics,
    midranks,
    predicted_class,
)
from components.monitor._checks import as_1d
from components.monitor.results import TestResult


def _clean(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray, int]:
    y = as_1d(y_true, "y_true")
    s = as_1d(y_score, "y_score")
    if len(y) != len(s):
        raise DataError(f"y_true has {len(y)} rows but y_score has {len(s)}", fix="pass labels and scores of the same rows")
    if np.isnan(s).any():
        raise DataError(f"y_score has {int(np.isnan(s).sum())} NaN predictions", fix="drop rows without a prediction before checking performance")
    missing = np.isnan(y)
    y, s = y[~missing], s[~missing]
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError("y_true must be binary 0/1 labels", fix="map the label column to 0/1")
    if ((s < 0) | (s > 1)).any():
        raise DataError("y_score must be probabilities in [0, 1]", fix="pass P(label = 1), not a class label or logit")
    return y.astype(np.int8), s, int(missing.sum())


def delong_interval(y: np.ndarray, s: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """AUC and its DeLong confidence interval ``(auc, low, high)``.

    >>> rng = np.random.default_rng(1)
    >>> y = rng.integers(0, 2, 500); s = np.clip(0.3 * y + rng.uniform(0, 0.7, 500), 0, 1)
    >>> [round(v, 3) for v in delong_interval(y, s)]
    [0.829, 0.795, 0.863]
    """
    from scipy.stats import norm

    x_pos, x_neg = s[y == 1], s[y == 0]
    m, n = len(x_pos), len(x_neg)
    if m < 2 or n < 2:
        return math.nan, math.nan, math.nan
    tz = midranks(np.r_[x_pos, x_neg])
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v_pos = (tz[:m] - midranks(x_pos)) / n
    v_neg = 1 - (tz[m:] - midranks(x_neg)) / m
    se = math.sqrt(v_pos.var(ddof=1) / m + v_neg.var(ddof=1) / n)
    z = norm.ppf(0.5 + confidence / 2)
    return float(auc), float(max(0.0, auc - z * se)), float(min(1.0, auc + z * se))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion.

    >>> [round(v, 4) for v in wilson_interval(85, 100)]
    [0.7672, 0.9069]
    """
    from scipy.stats import norm

    if n == 0:
        return math.nan, math.nan
    z = norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _metric_values(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    values = binary_metrics(y, s, threshold)
    return {m: values[m] for m in METRICS}


def compute_metrics(y_true: Any, y_score: Any, threshold: float = DECISION_THRESHOLD) -> dict[str, float]:
    """Every metric a performance monitor can check, plus ``n`` and ``missing_labels``.

    Labels that are NaN (not yet known) are dropped and counted; a metric that is undefined
    (AUC with one class, precision with no positive predictions) is NaN. The values are
    :func:`components.metrics.binary_metrics`, the computation behind the registered
    baselines they are compared with.
    """
    y, s, missing = _clean(y_true, y_score)
    out: dict[str, float] = _metric_values(y, s, threshold)
    out["n"] = len(y)
    out["missing_labels"] = missing
    return out


def _interval(metric: str, y: np.ndarray, s: np.ndarray, threshold: float, confidence: float, n_bootstrap: int, seed: int) -> tuple[float, float, str]:
    pred = predicted_class(s, threshold) == 1
    if metric in ("accuracy", "precision", "recall", "ctr"):
        hits, n = {
            "accuracy": (int((pred == (y == 1)).sum()), len(y)),
            "precision": (int((pred & (y == 1)).sum()), int(pred.sum())),
            "recall": (int((pred & (y == 1)).sum()), int(y.sum())),
            "ctr": (int(y.sum()), len(y)),
        }[metric]
        lo, hi = wilson_interval(hits, n, confidence)
        return lo, hi, "wilson"
    if metric in ("auc", "gini"):
        _, lo, hi = delong_interval(y, s, confidence)
        return (lo, hi, "delong") if metric == "auc" else (2 * lo - 1, 2 * hi - 1, "delong")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        i = rng.integers(0, len(y), len(y))
        stats[b] = _metric_values(y[i], s[i], threshold)[metric]
    lo, hi = np.quantile(stats, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return float(lo), float(hi), "bootstrap"


def metric_check(
    y_true: Any,
    y_score: Any,
    metric: str,
    baseline: float | None = None,
    min: float | None = None,  # noqa: A002 - the policy's key
    max: float | None = None,  # noqa: A002
    max_relative_drop: float | None = None,
    confidence: float = 0.95,
    min_samples: int = 100,
    segment: str | None = None,
    threshold: float = DECISION_THRESHOLD,
    decision: str = "ci",
    n_bootstrap: int = 200,
    seed: int = 0,
) -> TestResult:
    """Check one metric against an absolute ``min`` / ``max`` and/or a relative drop from ``baseline``.

    ``statistic`` is the metric, ``threshold`` the binding limit in metric units, ``details``
    hold the confidence interval, the relative drop ``(baseline - value) / |baseline|`` and
    the reasons. Below ``min_samples`` labelled rows, or with one label class for AUC/Gini,
    the status is ``"insufficient_data"`` and ``drift`` is False.

    >>> rng = np.random.default_rng(2)
    >>> y = rng.integers(0, 2, 1000)
    >>> good = np.where(rng.random(1000) < 0.9, y, 1 - y).astype(float)  # 90% right
    >>> bad = np.where(rng.random(1000) < 0.8, y, 1 - y).astype(float)   # 80% right
    >>> metric_check(y, good, "accuracy", min=0.85).drift, metric_check(y, bad, "accuracy", min=0.85).drift
    (False, True)
    >>> metric_check(y[:50], bad[:50], "accuracy", min=0.85).status
    'insufficient_data'
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}", fix=f"use one of {', '.join(METRICS)}")
    if min is None and max is None and max_relative_drop is None:
        raise ConfigError(f"metric check on {metric!r} has no limit", fix="set min, max or max_relative_drop")
    if max_relative_drop is not None and baseline is None:
        raise ConfigError(f"max_relative_drop on {metric!r} needs a baseline", fix="pass the champion's baseline metric (from the registry)")
    if decision not in ("ci", "point"):
        raise ConfigError(f"decision must be 'ci' or 'point', got {decision!r}", fix="use decision='ci'")
    y, s, missing = _clean(y_true, y_score)
    value = _metric_values(y, s, threshold)[metric]
    lower_better = metric in LOWER_IS_BETTER
    details: dict[str, Any] = {"n": len(y), "missing_labels": missing, "baseline": baseline, "confidence": confidence, "decision": decision}
    if baseline is not None and baseline != 0 and not math.isnan(value):
        details["relative_drop"] = (baseline - value) / abs(baseline)
    single_class = metric in ("auc", "gini") and (y.sum() == 0 or y.sum() == len(y))
    if len(y) < min_samples or single_class or math.isnan(value):
        reason = f"{len(y)} labelled rows < min_samples {min_samples}" if len(y) < min_samples else f"{metric} undefined on this window (one label class or no positive predictions)"
        return TestResult(test="metric", statistic=None if math.isnan(value) else value, p_value=None, threshold=None, drift=False,
                          metric=metric, segment=segment, status="insufficient_data", details={**details, "reason": reason})
    lo, hi, method = _interval(metric, y, s, threshold, confidence, n_bootstrap, seed)
    details.update(ci_low=lo, ci_high=hi, ci_method=method)
    # The limits in metric units: a floor for "higher is better" breaches, a ceiling for the others.
    floors = [v for v in (min,) if v is not None]
    ceilings = [v for v in (max,) if v is not None]
    if max_relative_drop is not None and baseline is not None:
        if lower_better:
            ceilings.append(baseline + abs(baseline) * max_relative_drop)
        else:
            floors.append(baseline - abs(baseline) * max_relative_drop)
    best_case_low, best_case_high = (hi, lo) if decision == "ci" else (value, value)
    reasons = [f"{metric} {value:.4g} (CI high {hi:.4g}) < {f:.4g}" for f in floors if best_case_low < f]
    reasons += [f"{metric} {value:.4g} (CI low {lo:.4g}) > {c:.4g}" for c in ceilings if best_case_high > c]
    if floors and (not lower_better or not ceilings):
        binding: float | None = builtins.max(floors)
    else:
        binding = builtins.min(ceilings) if ceilings else None
    details["reasons"] = reasons
    details["floors"], details["ceilings"] = floors, ceilings
    return TestResult(test="metric", statistic=value, p_value=None, threshold=binding, drift=bool(reasons), metric=metric, segment=segment, details=details)


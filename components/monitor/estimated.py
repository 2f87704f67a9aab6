"""Performance estimated without labels: confidence-based performance estimation (CBPE).

Labels arrive late (hours for fraud, a month for churn). If the model's scores are
calibrated, a score *is* the probability that the label is 1, so the expected confusion
matrix of a window, and every metric built from it, follows from the scores alone:

- a row predicted 1 is a true positive with probability ``p`` and a false positive with
  ``1 - p``; a row predicted 0 is a false negative with ``p`` and a true negative with
  ``1 - p``; accuracy, precision and recall are ratios of those expected counts;
- the expected ROC curve walks the rows from the highest score down, adding ``p`` to the
  expected positives and ``1 - p`` to the expected negatives; AUC is its area, Gini
  ``2 * AUC - 1``.

Scores are first calibrated on the reference window, where the labels are known, by the
method (none, isotonic or Platt) with the lowest calibration error over score deciles on a
held-out half of it; the report says when
even the better one leaves the reference badly calibrated (``trusted`` False), because then
the estimate is not to be believed. The band is the realised metric's sampling error on
reference subsamples of the window's size (3 standard errors, as NannyML does).

**Blind spot.** The estimate assumes P(y | score) is the reference's. Under pure concept
drift (inputs and scores unchanged, the relation to the label moved) it stays flat by
construction: keep the concept-drift monitors on the labelled error stream in the policy.

>>> rng = np.random.default_rng(0)
>>> p = rng.beta(2, 5, 4000)
>>> y = (rng.random(4000) < p).astype(int)                  # calibrated scores
>>> est = fit_estimator(y, p, seed=0)
>>> est.calibration.method in ("identity", "isotonic", "platt"), est.calibration.trusted
(True, True)
>>> round(expected_metrics(est.calibration(p), p)["accuracy"], 2), round(realised_metrics(y, p)["accuracy"], 2)
(0.74, 0.74)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from components.errors import DataError
from components.metrics import predicted_class
from components.monitor.results import TestResult

ESTIMABLE = ("accuracy", "precision", "recall", "auc", "gini")
BAND_SIGMAS = 3.0  # band = estimate +- 3 standard errors of the realised metric at this window size
MAX_TRUSTED_ECE = 0.05  # held-out calibration error (score deciles) above which the estimate is flagged
_SE_SAMPLE = 1000  # reference subsample size at which the standard error is measured (scaled by 1/sqrt(n))


@dataclass(frozen=True)
class Calibration:
    """Maps raw scores to calibrated P(label = 1); ``method`` is ``identity``, ``isotonic`` or ``platt``."""

    method: str
    holdout_ece: float  # ranked_calibration_error of the chosen method on the held-out half of the reference
    holdout_ece_raw: float  # of the raw scores on the same rows, for comparison
    model: Any = field(repr=False, compare=False)

    @property
    def trusted(self) -> bool:
        return bool(self.holdout_ece <= MAX_TRUSTED_ECE)

    def __call__(self, scores: Any) -> np.ndarray:
        s = np.asarray(scores, dtype=float)
        if self.method == "identity":
            return np.clip(s, 0.0, 1.0)
        if self.method == "platt":
            return np.asarray(self.model.predict_proba(_logit(s).reshape(-1, 1))[:, 1], dtype=float)
        return np.clip(np.asarray(self.model.predict(s), dtype=float), 0.0, 1.0)


@dataclass(frozen=True)
class Estimator:
    """What the reference window teaches: the calibration, realised baselines and sampling errors."""

    calibration: Calibration
    baseline: dict[str, float]  # realised metrics on the reference
    standard_error: dict[str, float]  # of each realised metric at _SE_SAMPLE rows
    reference_rows: int

    def band(self, metric: str, n: int) -> float:
        """Half-width of the band for a window of ``n`` rows."""
        se = self.standard_error.get(metric, float("nan"))
        return BAND_SIGMAS * se * math.sqrt(min(_SE_SAMPLE, self.reference_rows) / max(n, 1))


def _logit(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 1e-6, 1 - 1e-6)
    return np.log(s / (1 - s))


def fit_calibration(labels: Any, scores: Any, seed: int = 0) -> Calibration:
    """Keep the raw scores, or pick isotonic or Platt, by held-out calibration error over score deciles; refit on all of the reference."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    y, s = _clean(labels, scores, "reference")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    fit, hold = order[: len(y) // 2], order[len(y) // 2:]

    def make(method: str, yy: np.ndarray, ss: np.ndarray) -> Calibration:
        if method == "platt":
            model: Any = LogisticRegression(C=1e6).fit(_logit(ss).reshape(-1, 1), yy)
        else:
            model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(ss, yy)
        return Calibration(method, float("nan"), float("nan"), model)

    raw_ece = ranked_calibration_error(y[hold], s[hold], s[hold])
    # the raw scores compete too: a calibrator fitted on half the reference can add more
    # noise than it removes when the model is already calibrated (listed first: ties keep it)
    scored = [(raw_ece, 0, "identity")]
    for rank, method in enumerate(("isotonic", "platt"), start=1):
        cal = make(method, y[fit], s[fit])
        scored.append((ranked_calibration_error(y[hold], cal(s[hold]), s[hold]), rank, method))
    ece, _, method = min(scored)
    final = make(method, y, s) if method != "identity" else Calibration("identity", ece, raw_ece, None)
    return Calibration(method, ece, raw_ece, final.model)


def ranked_calibration_error(labels: np.ndarray, probs: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """Calibration error over deciles of the *raw score*: what CBPE needs.

    Binning by the calibrated probability would call a calibrator that predicts the base
    rate everywhere perfect; binning by the score asks whether each part of the model's
    ranking gets the right probability, which is what the expected confusion matrix uses.

    >>> s = np.linspace(0, 1, 1000); y = (s > 0.5).astype(int)
    >>> ranked_calibration_error(y, s, s) < ranked_calibration_error(y, np.full(1000, 0.5), s)
    True
    """
    order = np.argsort(scores, kind="mergesort")
    total = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            total += len(chunk) * abs(labels[chunk].mean() - probs[chunk].mean())
    return round(float(total / len(labels)), 10)


def expected_metrics(probs: Any, scores: Any, threshold: float | None = None) -> dict[str, float]:
    """Accuracy, precision, recall, AUC and Gini expected from calibrated probabilities.

    ``scores`` decide the predicted class (the model's own rule); ``probs`` are the
    calibrated P(label = 1) of the same rows.

    >>> expected_metrics([0.9, 0.8, 0.3, 0.1], [0.9, 0.8, 0.3, 0.1])["accuracy"]
    0.825
    """
    p = np.asarray(probs, dtype=float)
    s = np.asarray(scores, dtype=float)
    pred = predicted_class(s) if threshold is None else predicted_class(s, threshold)
    positive = pred == 1
    tp, fp = p[positive].sum(), (1 - p[positive]).sum()
    fn, tn = p[~positive].sum(), (1 - p[~positive]).sum()
    n = len(p)
    out = {
        "accuracy": float((tp + tn) / n) if n else float("nan"),
        "precision": float(tp / (tp + fp)) if tp + fp > 0 else float("nan"),
        "recall": float(tp / (tp + fn)) if tp + fn > 0 else float("nan"),
    }
    out["auc"] = _expected_auc(p, s)
    out["gini"] = 2 * out["auc"] - 1 if not math.isnan(out["auc"]) else float("nan")
    return out


def _expected_auc(p: np.ndarray, s: np.ndarray) -> float:
    """Area under the expected ROC curve; rows with equal scores move together (ties count half)."""
    pos_total, neg_total = p.sum(), (1 - p).sum()
    if pos_total <= 0 or neg_total <= 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, p_sorted = s[order], p[order]
    # group tied scores so a tie adds a diagonal segment, not an arbitrary staircase
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    pos = np.add.reduceat(p_sorted, starts)
    neg = np.add.reduceat(1 - p_sorted, starts)
    tpr = np.r_[0.0, np.cumsum(pos) / pos_total]
    fpr = np.r_[0.0, np.cumsum(neg) / neg_total]
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))


def realised_metrics(labels: Any, scores: Any) -> dict[str, float]:
    """The same metrics from labels, by :mod:`components.metrics` (the estimate's realised counterpart).

    >>> realised_metrics([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1])["accuracy"]
    0.5
    """
    from components import metrics

    full = metrics.binary_metrics(np.asarray(labels, dtype=float), np.asarray(scores, dtype=float))
    return {m: float(full[m]) for m in ESTIMABLE}


def fit_estimator(labels: Any, scores: Any, seed: int = 0, bootstrap: int = 200) -> Estimator:
    """Learn the calibration, the realised baselines and the sampling errors from the reference."""
    y, s = _clean(labels, scores, "reference")
    if len(y) < 200 or y.min() == y.max():
        raise DataError(f"the reference has {len(y)} labelled rows with {len(set(y.tolist()))} label class(es)",
                        fix="estimate performance against a reference of at least 200 labelled rows holding both classes")
    calibration = fit_calibration(y, s, seed)
    rng = np.random.default_rng(seed + 1)
    size = min(_SE_SAMPLE, len(y))
    draws = {m: [] for m in ESTIMABLE}  # type: dict[str, list[float]]
    for _ in range(bootstrap):
        idx = rng.integers(0, len(y), size)
        for m, v in realised_metrics(y[idx], s[idx]).items():
            if not math.isnan(v):
                draws[m].append(v)
    se = {m: float(np.std(v, ddof=1)) if len(v) > 1 else float("nan") for m, v in draws.items()}
    return Estimator(calibration, realised_metrics(y, s), se, len(y))


def estimate_check(
    estimator: Estimator,
    scores: Any,
    metric: str,
    labels: Any = None,
    min: float | None = None,  # noqa: A002 - the policy's key
    max_relative_drop: float | None = None,
    min_samples: int = 100,
    segment: str | None = None,
    baseline: float | None = None,
) -> TestResult:
    """The estimated ``metric`` of a window against a floor and/or a relative drop from a baseline.

    ``baseline`` defaults to the realised metric on the estimator's reference (the monitor
    passes the champion's registered baseline, as the labelled performance monitor does).

    Fires when the band's upper edge lies below the binding floor, so an estimate that is
    merely noisy near the limit does not fire. ``labels`` (optional, NaN where not yet
    known) add the realised value and the estimate's error to ``details``.

    >>> rng = np.random.default_rng(1)
    >>> p = rng.beta(2, 2, 5000); y = (rng.random(5000) < p).astype(int)
    >>> est = fit_estimator(y, p)
    >>> estimate_check(est, rng.beta(2, 2, 1000), "accuracy", max_relative_drop=0.1).drift
    False
    >>> estimate_check(est, rng.beta(20, 20, 1000), "accuracy", max_relative_drop=0.1).drift  # scores crowd 0.5
    True
    """
    if metric not in ESTIMABLE:
        raise DataError(f"performance on {metric!r} cannot be estimated without labels", fix=f"use one of {', '.join(ESTIMABLE)}")
    s = np.asarray(scores, dtype=float)
    if np.isnan(s).any():
        raise DataError(f"the window has {int(np.isnan(s).sum())} rows without a prediction", fix="drop them before estimating")
    value = expected_metrics(estimator.calibration(s), s)[metric] if len(s) else float("nan")
    half = estimator.band(metric, len(s))
    baseline = estimator.baseline.get(metric) if baseline is None else baseline
    floors = [v for v in (min,) if v is not None]
    if max_relative_drop is not None and baseline is not None and not math.isnan(baseline):
        floors.append(baseline - abs(baseline) * max_relative_drop)
    binding = max(floors) if floors else None
    details: dict[str, Any] = {
        "n": len(s), "lower": value - half, "upper": value + half, "baseline": baseline,
        "calibration": estimator.calibration.method, "calibration_ece": estimator.calibration.holdout_ece,
        "trusted": estimator.calibration.trusted, "realised": None,
        "blind_spot": "estimates assume P(label | score) is unchanged; pure concept drift is caught only by the labelled monitors",
    }
    if not estimator.calibration.trusted:
        details["warning"] = (f"the model's scores stay poorly calibrated on the reference (held-out ECE "
                              f"{estimator.calibration.holdout_ece:.3f} > {MAX_TRUSTED_ECE}); do not act on this estimate alone")
    if labels is not None:
        y = np.asarray(labels, dtype=float)
        known = ~np.isnan(y)
        if known.sum() >= min_samples and 0 < y[known].sum() < known.sum():
            realised = realised_metrics(y[known], s[known])[metric]
            details.update(realised=realised, error=value - realised, labelled=int(known.sum()))
    if len(s) < min_samples or math.isnan(value):
        return TestResult(test="cbpe", statistic=None if math.isnan(value) else value, p_value=None, threshold=binding, drift=False,
                          metric=metric, segment=segment, status="insufficient_data",
                          details={**details, "reason": f"{len(s)} rows < min_samples {min_samples}" if len(s) < min_samples else f"{metric} undefined"})
    reasons = [f"estimated {metric} {value:.4g} (band high {value + half:.4g}) < {f:.4g}" for f in floors if value + half < f]
    details["reasons"] = reasons
    return TestResult(test="cbpe", statistic=value, p_value=None, threshold=binding, drift=bool(reasons), metric=metric, segment=segment,
                      details=details)


def _clean(labels: Any, scores: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=float)
    s = np.asarray(scores, dtype=float)
    if len(y) != len(s):
        raise DataError(f"the {what} has {len(y)} labels but {len(s)} scores", fix="pass labels and scores of the same rows")
    keep = ~(np.isnan(y) | np.isnan(s))
    y, s = y[keep], s[keep]
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError(f"the {what}'s labels must be 0/1", fix="map the label column to 0/1")
    if ((s < 0) | (s > 1)).any():
        raise DataError(f"the {what}'s scores must be probabilities in [0, 1]", fix="pass P(label = 1)")
    return y.astype(int), s

"""Concept drift: online detectors over the time-ordered stream of prediction errors.

Four detectors share one contract (:class:`DriftDetector`: ``update(x) -> bool``,
read-only ``drift_detected``, ``_reset()``): :class:`ADWIN` and :class:`PageHinkley`
(written here) and :class:`FETOnline` / :class:`CVMOnline` (alibi-detect's calibrated
online detectors, which need the reference window's errors and an expected run time).
:func:`detect_on_stream` runs one over a stream and returns a TestResult whose
``detected_at`` is the 0-based position where it fired, with a downsampled trace of the
statistic and its threshold for plotting.

A threshold left unset (``ert``, ``delta``, ``ph_threshold``) is derived from
``false_alarm_rate`` (per run) and the stream's length (:mod:`components.monitor.budget`);
``details["false_alarm_rate"]`` states the rate the settings promise. A reference that
fet_online/cvm_online cannot calibrate on (no errors, one value, under 10 rows) falls back
to Page-Hinkley, which needs none, with a warning in ``details["warnings"]``.

>>> rng = np.random.default_rng(0)
>>> errors = np.r_[rng.random(600) < 0.1, rng.random(600) < 0.35].astype(int)
>>> r = detect_on_stream(errors, detector="adwin", delta=0.002)
>>> r.drift, r.detected_at
(True, 671)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from components.errors import ConfigError, DataError
from components.monitor._adwin import ADWIN
from components.monitor._checks import as_1d
from components.monitor._detector import DriftDetector
from components.monitor._online import CVMOnline, FETOnline, default_bootstraps
from components.monitor._page_hinkley import PageHinkley
from components.monitor.budget import (
    POLICY_FALSE_ALARM_RATE,
    adwin_delta,
    ert_rate,
    fet_ert,
    page_hinkley_rate,
    page_hinkley_threshold,
)
from components.monitor.results import TestResult

DETECTORS = ("fet_online", "cvm_online", "adwin", "page_hinkley")
DEFAULT_DETECTOR = "adwin"  # as fast as river's ADWIN at the stated rate; figures in docs/monitoring.md

__all__ = ["ADWIN", "DEFAULT_DETECTOR", "DETECTORS", "CVMOnline", "DriftDetector", "FETOnline", "PageHinkley", "detect_on_stream", "make_detector"]


def make_detector(
    detector: str,
    reference_errors: Any = None,
    ert: int = 1000,
    window_size: int = 100,
    delta: float = 0.002,
    n_bootstraps: int | None = None,
    seed: int = 0,
    ph_threshold: float = 25.0,
) -> DriftDetector:
    """Build a detector by name; ConfigError for a bad name or setting.

    >>> make_detector("adwin", delta=0.01)
    ADWIN(delta=0.01, clock=32, max_buckets=5, min_window_length=5, grace_period=10)
    """
    if detector not in DETECTORS:
        raise ConfigError(f"unknown concept-drift detector {detector!r}", fix=f"use one of {', '.join(DETECTORS)}")
    try:
        if detector == "adwin":
            return ADWIN(delta=delta)
        if detector == "page_hinkley":
            # no forgetting (alpha 1): with it, the statistic's stationary spread grows with the
            # window (~21 at 0/1 rate 0.1) and a derived threshold fires on every 100k-row run
            return PageHinkley(threshold=ph_threshold, alpha=1.0)
        if reference_errors is None:
            raise DataError(f"{detector} needs reference_errors (the reference window's errors)", fix="pass the errors of the model on its reference window")
        ref = as_1d(reference_errors, "reference_errors")
        ref = ref[~np.isnan(ref)]
        if len(ref) < 10:
            raise DataError(f"reference_errors has {len(ref)} values; {detector} needs at least 10", fix="use a longer reference window")
        cls = FETOnline if detector == "fet_online" else CVMOnline
        return cls(ref, ert=ert, window_size=window_size, n_bootstraps=n_bootstraps, seed=seed)
    except ValueError as exc:
        raise ConfigError(f"{detector}: {exc}", fix="check the concept_drift monitor settings and the reference errors") from None


def _known(values: Any) -> np.ndarray | None:
    if values is None:
        return None
    v = as_1d(values, "reference_errors")
    return v[~np.isnan(v)]


def reference_problem(detector: str, reference_errors: Any) -> str | None:
    """Why ``detector`` cannot calibrate on ``reference_errors`` (None when it can).

    >>> reference_problem("fet_online", [0] * 50)
    'the reference has no errors (a model that fits its reference perfectly)'
    >>> reference_problem("adwin", None) is None
    True
    """
    if detector not in ("fet_online", "cvm_online"):
        return None
    ref = _known(reference_errors)
    if ref is None or len(ref) == 0:
        return "no reference errors were given"
    if len(ref) < 10:
        return f"the reference has {len(ref)} labelled rows (fewer than 10)"
    if detector == "fet_online" and np.isin(ref, (0.0, 1.0)).all() and ref.max() == 0:
        return "the reference has no errors (a model that fits its reference perfectly)"
    if ref.min() == ref.max():
        return f"every reference error is {ref[0]:g} (one value)"
    return None


def training_data_as_reference(values: np.ndarray, reference_errors: Any) -> str | None:
    """A warning when the reference's error rate is far below the stream's from its first rows.

    That is the mark of training data passed as reference (a model fits its training rows
    better than any later ones), not of a change inside the window.

    >>> rng = np.random.default_rng(0)
    >>> training_data_as_reference((rng.random(2000) < 0.15).astype(float), np.zeros(500)) is not None
    True
    >>> training_data_as_reference((rng.random(2000) < 0.15).astype(float), (rng.random(500) < 0.15)) is None
    True
    """
    from scipy.stats import binomtest

    ref = _known(reference_errors)
    if ref is None or len(ref) < 10 or not np.isin(ref, (0.0, 1.0)).all() or len(values) < 30:
        return None
    first = values[: max(100, len(values) // 10)]
    p_ref = (ref.sum() + 0.5) / (len(ref) + 1)
    if first.mean() < 3 * p_ref or binomtest(int(first.sum()), len(first), p_ref, alternative="greater").pvalue > 1e-6:
        return None
    return (f"the reference error rate {ref.mean():.3f} is far below the current {first.mean():.3f} from the first "
            f"{len(first)} rows: was training data passed as reference? Use a held-out window the model did not train on")


def _downsample(t: np.ndarray, points: int, keep: int | None) -> np.ndarray:
    if len(t) <= points:
        return t
    idx = np.unique(np.r_[np.linspace(0, len(t) - 1, points).round().astype(int), [] if keep is None else [keep]]).astype(int)
    return t[idx]


def detect_on_stream(
    errors: Any,
    detector: str = DEFAULT_DETECTOR,
    reference_errors: Any = None,
    ert: int | None = None,
    window_size: int = 100,
    delta: float | None = None,
    n_bootstraps: int | None = None,
    seed: int = 0,
    segment: str | None = None,
    trace_points: int = 200,
    stop_on_detection: bool = True,
    ph_threshold: float | None = None,
    false_alarm_rate: float = POLICY_FALSE_ALARM_RATE,
) -> TestResult:
    """Run one online detector over ``errors`` (time-ordered; 1 = wrong prediction).

    NaN errors (labels not known yet) are skipped; ``detected_at`` indexes the stream as
    given. ADWIN and Page-Hinkley are warmed up on ``reference_errors`` when given, so the
    stream is compared with the reference from its first value.
    """
    stream = as_1d(errors, "errors")
    if len(stream) == 0:
        raise DataError("the error stream is empty", fix="widen the current window or wait for labels")
    known = np.flatnonzero(~np.isnan(stream))
    values = stream[known]
    if detector == "fet_online" and not np.isin(values, (0.0, 1.0)).all():
        raise DataError("fet_online needs a 0/1 error stream", fix="pass 1 for a wrong prediction and 0 for a right one, or use cvm_online for per-row losses")
    warnings: list[str] = []
    asked = detector
    problem = reference_problem(detector, reference_errors)
    if problem:
        detector = "page_hinkley"
        warnings.append(f"{asked}: {problem}; ran page_hinkley instead, calibrated on the stream itself (no reference needed)")
        if reference_errors is not None:
            warnings += [w for w in [training_data_as_reference(values, reference_errors)] if w]
        reference_errors = None  # it says nothing about the stable error rate
    n = len(values)
    suspect = training_data_as_reference(values, reference_errors)
    if suspect and suspect not in warnings:
        warnings.append(suspect)
    if detector == "adwin":
        delta = delta if delta is not None else adwin_delta(false_alarm_rate, n)
        stated = min(1.0, round(delta * math.log(max(n, 3)), 6))
    elif detector == "page_hinkley":
        # without a reference, the stream itself: a change only raises its spread, so the
        # threshold errs on the quiet side
        ref_known = _known(reference_errors) if reference_errors is not None else values
        ph_threshold = ph_threshold if ph_threshold is not None else page_hinkley_threshold(false_alarm_rate, n, ref_known)
        stated = page_hinkley_rate(ph_threshold, n, ref_known)
    else:
        if ert is None:
            ert, stated = fet_ert(false_alarm_rate, max(n - window_size + 1, 1))
        else:
            stated = ert_rate(ert, max(n - window_size + 1, 1))
    if stated > false_alarm_rate * 1.0001:
        warnings.append(f"{detector} settings state a false-alarm rate of {stated:.3g} per run over {n} rows, "
                        f"above the monitor's budget {false_alarm_rate:.3g}; unset ert/delta/ph_threshold to derive them from the budget")
    det = make_detector(detector, reference_errors, ert or 1000, window_size, delta or 0.002, n_bootstraps, seed, ph_threshold or 25.0)
    settings: dict[str, Any] = {"ert": ert, "window_size": window_size, "delta": delta, "ph_threshold": ph_threshold,
                                "false_alarm_rate": stated, "false_alarm_budget": false_alarm_rate}
    if detector in ("fet_online", "cvm_online"):
        settings["n_bootstraps"] = n_bootstraps or default_bootstraps(ert or 1000)
    base = {"n": len(stream), "nan_dropped": int(len(stream) - len(values)), "detector": detector, "warnings": warnings, **settings}
    min_needed = window_size if detector in ("fet_online", "cvm_online") else 30
    if len(values) < min_needed:
        return TestResult(test=detector, statistic=None, p_value=None, threshold=None, drift=False, segment=segment, status="insufficient_data",
                          details={**base, "reason": f"{len(values)} labelled errors < {min_needed} needed"})
    if reference_errors is not None and detector in ("adwin", "page_hinkley"):
        ref = as_1d(reference_errors, "reference_errors")
        for x in ref[~np.isnan(ref)]:
            det.update(x)
        det._drift_detected = False
    stats = np.full(len(values), np.nan)
    thresholds = np.full(len(values), np.nan)
    fired: int | None = None
    for i, x in enumerate(values):
        if det.update(x) and fired is None:
            fired = i
        stats[i], thresholds[i] = det.statistic, det.threshold
        if fired is not None and stop_on_detection:
            stats, thresholds = stats[: i + 1], thresholds[: i + 1]
            break
    t = _downsample(np.arange(len(stats)), trace_points, fired)
    trace = [{"t": int(known[j]), "statistic": float(stats[j]), "threshold": float(thresholds[j])} for j in t]
    at = int(known[fired]) if fired is not None else None
    j = fired if fired is not None else int(np.nanargmax(np.where(np.isnan(stats), -np.inf, stats))) if np.isfinite(stats).any() else len(stats) - 1
    ref_rate = None
    if reference_errors is not None:
        ref = as_1d(reference_errors, "reference_errors")
        ref_rate = float(np.nanmean(ref))
    details = {
        **base,
        "trace": trace,
        "error_rate_reference": ref_rate,
        "error_rate_before": float(values[:fired].mean()) if fired else float(values.mean()),
        "error_rate_after": float(values[fired:].mean()) if fired is not None else None,
    }
    stat, thr = stats[j], thresholds[j]
    return TestResult(
        test=detector,
        statistic=None if np.isnan(stat) else float(stat),
        p_value=None,
        threshold=None if np.isnan(thr) else float(thr),
        drift=fired is not None,
        detected_at=at,
        segment=segment,
        details=details,
    )

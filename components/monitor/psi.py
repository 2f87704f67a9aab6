"""Population Stability Index: the one PSI of the project (monitors and canary analysis).

``PSI = sum_b (c_b - r_b) * ln(c_b / r_b)`` over bucket shares ``r`` (reference) and ``c``
(current). Numeric buckets are cut at the reference quantiles; categorical buckets are the
reference categories plus an ``"other"`` bucket for categories the reference never saw.
Counts get +0.5 per bucket (Jeffreys smoothing) so empty buckets give a finite PSI.
:func:`psi_test` works on raw values (feature and prediction drift monitors);
:func:`psi_from_counts` on bucket counts that are already there (the canary's prediction
histograms from Prometheus). Both give the same statistic and the same verdict.

Small-sample correction, one for every caller: with no drift, ``PSI / (1/n + 1/m)`` is
approximately chi-squared with ``B - 1`` degrees of freedom (``B`` buckets in use), so PSI's
no-drift expectation is ``(B - 1) * (1/n + 1/m)`` and its spread grows as the samples
shrink. The verdict compares PSI with ``max(threshold, chi2.ppf(0.999, B - 1) * (1/n + 1/m))``:
noise alone crosses that floor in 0.1% of windows, whatever the bin count, so a 30-row
window (or a canary step with 100 predictions per arm) cannot fire on sampling noise.
Why a raised threshold rather than a debiased statistic (PSI minus its expectation): the
reported PSI stays the textbook value a reader can recompute from the buckets, the
false-alarm rate is set explicitly (0.1%) instead of depending on the bucket count, and
the floor is reported in ``details["noise_floor"]`` so a "no drift" verdict says why.

>>> rng = np.random.default_rng(0)
>>> ref = PSIReference.fit(rng.normal(size=5000), bins=10)
>>> round(ref.psi(rng.normal(size=5000)), 4), round(ref.psi(rng.normal(0.5, 1, 5000)), 3)
(0.0054, 0.253)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from components.errors import ConfigError, DataError
from components.monitor._checks import finite_or_raise
from components.monitor.results import TestResult

GUARD_QUANTILE = 0.999  # the noise floor is this quantile of PSI under no drift
SMOOTHING = 0.5  # pseudo-count per bucket
OTHER = "other"


def _as_values(values: Any, categorical: bool, name: str) -> tuple[np.ndarray, int]:
    arr = np.asarray(values, dtype=object if categorical else None).ravel()
    if arr.size == 0:
        raise DataError(f"{name} is empty", fix=f"pass at least one value in {name}")
    if categorical:
        missing = np.asarray(pd.isna(arr), dtype=bool)  # None, NaN, pd.NA, NaT
        if missing.all():
            raise DataError(f"{name} is all missing", fix=f"fill {name} upstream")
        return arr[~missing].astype(str), int(missing.sum())
    try:
        floats = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} is not numeric (dtype {arr.dtype})", fix="pass categorical=True for category columns") from None
    return finite_or_raise(floats, name, "psi")


@dataclass(frozen=True)
class PSIReference:
    """Reference bucket counts, fitted once and reused for every window. Build with :meth:`fit`."""

    counts: np.ndarray
    edges: np.ndarray | None = None  # inner numeric cut points (buckets: (-inf, e0], (e0, e1], ...)
    categories: tuple[str, ...] | None = None  # categorical buckets; the last one is "other"
    nan_count: int = 0

    @classmethod
    def fit(cls, values: Any, bins: int = 10, categorical: bool = False) -> PSIReference:
        """Fix the buckets on ``values`` (quantile edges, or the categories seen plus "other")."""
        if not isinstance(bins, int | np.integer) or bins < 2:
            raise ConfigError(f"PSI bins must be an integer >= 2, got {bins!r}", fix="use e.g. bins: 10")
        arr, n_nan = _as_values(values, categorical, "reference values")
        if categorical:
            cats = tuple(sorted(set(arr.tolist()) - {OTHER})) + (OTHER,)
            ref = cls(np.zeros(len(cats), dtype=np.int64), categories=cats, nan_count=n_nan)
        else:
            inner = np.unique(np.quantile(arr, np.linspace(0, 1, bins + 1)[1:-1]))
            ref = cls(np.zeros(len(inner) + 1, dtype=np.int64), edges=inner, nan_count=n_nan)
        object.__setattr__(ref, "counts", ref.bucket_counts(arr))
        return ref

    @classmethod
    def from_profile(cls, values: np.ndarray | dict[str, int], nan_count: int, bins: int = 10) -> PSIReference:
        """The same buckets from a reference profile's column: sorted values, or ``{category: count}``.

        >>> PSIReference.from_profile({"a": 3, "b": 1}, 2).counts.tolist()
        [3, 1, 0]
        """
        if isinstance(values, dict):
            ref = cls.fit(np.array(list(values), dtype=object), bins=bins, categorical=True)
            counts = ref._category_counts(np.array(list(values), dtype=str), np.array(list(values.values()), dtype=np.int64))
            return dataclasses.replace(ref, counts=counts, nan_count=nan_count)
        return dataclasses.replace(cls.fit(values, bins=bins), nan_count=nan_count)

    @property
    def n(self) -> int:
        """Reference rows (NaN excluded)."""
        return int(self.counts.sum())

    @property
    def labels(self) -> list[str]:
        """A readable name per bucket."""
        if self.categories is not None:
            return list(self.categories)
        assert self.edges is not None
        lows = ["-inf", *(f"{e:.4g}" for e in self.edges)]
        highs = [*(f"{e:.4g}" for e in self.edges), "inf"]
        return [f"({lo}, {hi}]" for lo, hi in zip(lows, highs, strict=True)]

    def bucket_counts(self, values: np.ndarray) -> np.ndarray:
        """Counts per bucket of already-cleaned values."""
        if self.categories is not None:
            return self._category_counts(*np.unique(np.asarray(values, dtype=str), return_counts=True))
        assert self.edges is not None
        return np.bincount(np.searchsorted(self.edges, values, side="left"), minlength=len(self.edges) + 1)

    def _category_counts(self, categories: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Bucket counts from (category, count) pairs: a category the reference never saw goes to "other"."""
        assert self.categories is not None
        index = {c: i for i, c in enumerate(self.categories)}
        other = len(self.categories) - 1
        out = np.zeros(len(self.categories), dtype=np.int64)
        for u, c in zip(categories.tolist(), counts.tolist(), strict=True):
            out[index.get(u, other)] += c
        return out

    def shares(self, counts: np.ndarray) -> np.ndarray:
        """Smoothed shares of ``counts`` (:func:`smoothed_shares`)."""
        return smoothed_shares(counts)

    def psi(self, current: Any) -> float:
        """PSI of ``current`` against the reference buckets (NaN dropped)."""
        arr, _ = _as_values(current, self.categories is not None, "current values")
        return _psi(self.shares(self.counts), self.shares(self.bucket_counts(arr)))

    def noise_floor(self, m: int, counts: np.ndarray | None = None, quantile: float = GUARD_QUANTILE) -> float:
        """The PSI that noise alone exceeds with probability ``1 - quantile`` for ``m`` current rows."""
        return noise_floor(self.counts, np.zeros_like(self.counts) if counts is None else counts, quantile, m=m)


def smoothed_shares(counts: Any) -> np.ndarray:
    """Bucket shares with :data:`SMOOTHING` pseudo-counts, so an empty bucket has a finite log.

    >>> smoothed_shares([3, 0, 1]).round(3).tolist()
    [0.636, 0.091, 0.273]
    """
    c = np.asarray(counts, dtype=float)
    return (c + SMOOTHING) / (c.sum() + SMOOTHING * len(c))


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_value(reference_counts: Any, current_counts: Any) -> float:
    """PSI between two histograms over the same buckets (smoothed shares).

    >>> psi_value([50, 50], [50, 50])
    0.0
    >>> round(psi_value([90, 10], [50, 50]), 3)
    0.853
    """
    return _psi(smoothed_shares(reference_counts), smoothed_shares(current_counts))


def noise_floor(reference_counts: Any, current_counts: Any, quantile: float = GUARD_QUANTILE, m: int | None = None) -> float:
    """The PSI that sampling noise alone exceeds with probability ``1 - quantile``.

    ``chi2.ppf(quantile, B - 1) * (1/n + 1/m)`` with ``B`` the buckets either side uses and
    ``n``, ``m`` the two sample sizes (``m`` defaults to the current counts' total).

    >>> round(noise_floor([50, 50], [50, 50]), 3)  # chi2.ppf(0.999, 1) * (1/100 + 1/100)
    0.217
    """
    from scipy.stats import chi2

    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    n, m = ref.sum(), (cur.sum() if m is None else m)
    if n <= 0 or m <= 0:
        return math.inf
    dof = max(int(((ref + cur) > 0).sum()) - 1, 1)
    return float(chi2.ppf(quantile, dof) * (1 / n + 1 / m))


def _check_levels(warn: float, drift: float) -> None:
    if not 0 < warn <= drift:
        raise ConfigError(f"PSI levels must satisfy 0 < warn <= drift, got warn={warn}, drift={drift}", fix="use e.g. warn: 0.1, drift: 0.25")


def psi_from_counts(
    reference_counts: Any,
    current_counts: Any,
    warn: float = 0.1,
    drift: float = 0.25,
    labels: list[str] | None = None,
    feature: str | None = None,
    segment: str | None = None,
    guard_quantile: float = GUARD_QUANTILE,
) -> TestResult:
    """PSI of two histograms over the same buckets, with a level ("ok" | "warn" | "drift").

    ``threshold`` is ``max(drift, noise floor)``; ``details`` hold the per-bucket breakdown,
    both limits and the noise floor. An empty side raises ``DataError``.

    >>> r = psi_from_counts([10, 20, 30, 40], [40, 30, 20, 10])
    >>> round(r.statistic, 3), r.drift, r.details["level"]
    (0.872, True, 'drift')
    >>> psi_from_counts([1, 2, 3, 4], [2, 1, 4, 3]).drift  # 10 rows a side: noise, guarded
    False
    """
    _check_levels(warn, drift)
    ref_counts = np.asarray(reference_counts, dtype=float)
    cur_counts = np.asarray(current_counts, dtype=float)
    if ref_counts.shape != cur_counts.shape or ref_counts.ndim != 1:
        raise DataError(f"PSI needs two histograms over the same buckets, got {ref_counts.shape} and {cur_counts.shape}", fix="count both samples in the same buckets")
    for counts, name in ((ref_counts, "reference"), (cur_counts, "current")):
        if counts.sum() <= 0:
            raise DataError(f"the {name} histogram is empty", fix=f"wait for {name} rows before computing PSI")
    r, c = smoothed_shares(ref_counts), smoothed_shares(cur_counts)
    value = _psi(r, c)
    floor = noise_floor(ref_counts, cur_counts, guard_quantile)
    drift_at, warn_at = max(drift, floor), max(warn, floor)
    level = "drift" if value > drift_at else "warn" if value > warn_at else "ok"
    names = labels if labels is not None else [str(i) for i in range(len(r))]
    buckets = [
        {"bucket": label, "reference": float(rs), "current": float(cs), "contribution": float((cs - rs) * np.log(cs / rs))}
        for label, rs, cs in zip(names, r, c, strict=True)
    ]
    return TestResult(
        test="psi",
        statistic=value,
        p_value=None,
        threshold=drift_at,
        drift=level == "drift",
        feature=feature,
        segment=segment,
        details={"level": level, "bins": buckets, "warn": warn, "drift": drift, "warn_threshold": warn_at, "noise_floor": floor,
                 "n_reference": int(ref_counts.sum()), "n_current": int(cur_counts.sum())},
    )


def psi_test(
    reference: Any,
    current: Any,
    bins: int = 10,
    warn: float = 0.1,
    drift: float = 0.25,
    categorical: bool = False,
    feature: str | None = None,
    segment: str | None = None,
    fitted: PSIReference | None = None,
    guard_quantile: float = GUARD_QUANTILE,
) -> TestResult:
    """PSI with a level ("ok" | "warn" | "drift") and the per-bucket breakdown in ``details``.

    ``threshold`` is ``max(drift, noise floor)``; pass ``fitted`` to reuse a reference.

    >>> rng = np.random.default_rng(1)
    >>> r = psi_test(rng.normal(size=2000), rng.normal(0.8, 1, 2000), feature="x")
    >>> r.drift, r.details["level"]
    (True, 'drift')
    >>> small = psi_test(rng.normal(size=2000), rng.normal(size=30))  # noisy PSI, guarded
    >>> small.statistic > 0.25, small.drift, round(small.threshold, 2)
    (True, False, 0.94)
    """
    _check_levels(warn, drift)
    ref = fitted if fitted is not None else PSIReference.fit(reference, bins=bins, categorical=categorical)
    cur_values, cur_nan = _as_values(current, ref.categories is not None, "current values")
    r = psi_from_counts(ref.counts, ref.bucket_counts(cur_values), warn=warn, drift=drift, labels=ref.labels,
                        feature=feature, segment=segment, guard_quantile=guard_quantile)
    return dataclasses.replace(r, details={**r.details, "nan_reference": ref.nan_count, "nan_current": cur_nan})

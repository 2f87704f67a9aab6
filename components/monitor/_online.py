"""alibi-detect's calibrated online detectors behind the common ``update(x) -> bool`` contract.

``FETOnline`` (Fisher's exact test on a binary error stream, one-sided: the error rate
went up) and ``CVMOnline`` (Cramer-von Mises on a continuous stream such as per-row log
loss) compare sliding windows of ``window_size`` with a reference sample. Their thresholds
are simulated so that, without drift, a false alarm comes on average every ``ert`` values
(expected run time). Simulation costs seconds, so calibrated detectors are cached per
(kind, ert, window_size, reference, n_bootstraps, seed) and copied for each use.
"""

from __future__ import annotations

import copy
import hashlib
import math
import warnings
from typing import Any

import numpy as np

from components.monitor._checks import numpy_seed
from components.monitor._detector import DriftDetector

MAX_CVM_REFERENCE = 300  # CVM's per-update cost and calibration memory grow with the reference size
_CACHE: dict[tuple[Any, ...], Any] = {}


def default_bootstraps(ert: int) -> int:
    """Simulated streams for calibration: 1.5 x ert + 100, at least 1000.

    alibi-detect needs more streams than ``ert`` to estimate the (1 - 1/ert) quantile of the
    statistic, and some streams drop out as they cross; 1.5 x ert keeps calibration to a few
    seconds for ert up to ~2000 (about 10 s for ert 5000 with window 200, cached afterwards).
    Few streams beyond ert put the threshold near the top simulated values: slightly fewer
    false alarms and slightly later alarms than the exact ert.

    >>> default_bootstraps(100), default_bootstraps(5000)
    (1000, 7600)
    """
    return int(max(1000, 1.5 * ert + 100))


def _calibrated(kind: str, ref: np.ndarray, ert: int, window_size: int, n_bootstraps: int, seed: int) -> Any:
    key = (kind, ert, window_size, n_bootstraps, seed, hashlib.sha1(np.ascontiguousarray(ref).tobytes()).hexdigest(), ref.dtype.str)
    if key not in _CACHE:
        from alibi_detect.cd import CVMDriftOnline, FETDriftOnline

        with numpy_seed(seed):
            if kind == "fet":
                det = FETDriftOnline(ref, ert=ert, window_sizes=[window_size], n_bootstraps=n_bootstraps, verbose=False)
            else:
                det = CVMDriftOnline(ref, ert=ert, window_sizes=[window_size], n_bootstraps=n_bootstraps, verbose=False)
        _CACHE[key] = det
    det = copy.deepcopy(_CACHE[key])
    det.reset_state()
    return det


class _AlibiOnline(DriftDetector):
    kind = ""

    def __init__(self, reference: Any, ert: int = 1000, window_size: int = 100, n_bootstraps: int | None = None, seed: int = 0) -> None:
        if ert < 10:
            raise ValueError(f"ert must be >= 10, got {ert}")
        if window_size < 2:
            raise ValueError(f"window_size must be >= 2, got {window_size}")
        self.ert = int(ert)
        self.window_size = int(window_size)
        self.n_bootstraps = int(n_bootstraps or default_bootstraps(self.ert))
        self.seed = seed
        self._ref = self._prepare(np.asarray(reference, dtype=float).ravel())
        self._detector = _calibrated(self.kind, self._ref, self.ert, self.window_size, self.n_bootstraps, seed)
        super().__init__()

    def _prepare(self, ref: np.ndarray) -> np.ndarray:
        return ref

    def _reset(self) -> None:
        super()._reset()
        self._detector.reset_state()

    def update(self, x: float) -> bool:
        self.n_seen += 1
        det = self._detector
        # alibi-detect's predict() step by step, without its result dict (deep-copied each row)
        # and with a history of one row instead of all of them (grown by concatenation, so
        # quadratic over a stream): FET's score smooths with the last row only. The same
        # score, threshold and decision, cheaper per row.
        stats = det.score(np.array([self._cast(x)]))
        thresholds = det.get_threshold(det.t - 1)
        self._drift_detected = bool(self._check(stats, thresholds))
        det.test_stats = stats[None, :, :]
        det.drift_preds = np.array([int(self._drift_detected)])
        stat = np.asarray(stats, dtype=float)
        self.statistic = float(np.nanmax(stat)) if np.isfinite(stat).any() else math.nan
        self.threshold = float(np.asarray(thresholds, dtype=float).ravel()[0])
        return self._drift_detected

    def _check(self, stats: np.ndarray, thresholds: np.ndarray) -> int:
        return int(self._detector._check_drift(stats, thresholds))

    def _cast(self, x: float) -> Any:
        return float(x)


class FETOnline(_AlibiOnline):
    """alibi-detect's FETDriftOnline on a 0/1 error stream (alternative: the error rate increased).

    >>> rng = np.random.default_rng(0)
    >>> ref = (rng.random(500) < 0.1).astype(int)
    >>> det = FETOnline(ref, ert=200, window_size=50, seed=0)
    >>> stream = np.r_[rng.random(100) < 0.1, rng.random(200) < 0.5].astype(int)
    >>> [i for i, x in enumerate(stream) if det.update(x)][:1]
    [110]
    """

    kind = "fet"

    def _reset(self) -> None:
        super()._reset()
        # alibi-detect breaks a tie with the threshold by numpy's global generator: it gets a
        # private, seeded one, swapped in only when a tie can draw (the swap on every row was
        # half of each row's cost)
        self._rng_state = np.random.RandomState(self.seed).get_state()

    def _check(self, stats: np.ndarray, thresholds: np.ndarray) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN until the window fills
            top = np.nanmax(stats, axis=0)
        if (top > thresholds).any() or not (top == thresholds).any():
            return super()._check(stats, thresholds)  # decided without a draw
        outer = np.random.get_state()
        np.random.set_state(self._rng_state)
        try:
            return super()._check(stats, thresholds)
        finally:
            self._rng_state = np.random.get_state()
            np.random.set_state(outer)

    def _prepare(self, ref: np.ndarray) -> np.ndarray:
        if not np.isin(ref, (0, 1)).all():
            raise ValueError("FETOnline needs a 0/1 reference error sample")
        if ref.min() == ref.max():
            raise ValueError("FETOnline needs both errors and correct predictions in the reference sample")
        return ref.astype(np.int64)

    def _cast(self, x: float) -> Any:
        return int(x)


class CVMOnline(_AlibiOnline):
    """alibi-detect's CVMDriftOnline on a continuous stream (e.g. per-row log loss).

    The reference is subsampled evenly to at most 300 values to bound cost.

    >>> rng = np.random.default_rng(1)
    >>> det = CVMOnline(rng.exponential(0.3, 300), ert=500, window_size=30, seed=0)
    >>> stream = np.r_[rng.exponential(0.3, 100), rng.exponential(0.9, 200)]
    >>> [i for i, x in enumerate(stream) if det.update(x)][:1]
    [115]
    """

    kind = "cvm"

    def _prepare(self, ref: np.ndarray) -> np.ndarray:
        ref = ref[np.isfinite(ref)]
        if len(ref) > MAX_CVM_REFERENCE:
            ref = np.sort(ref)[np.linspace(0, len(ref) - 1, MAX_CVM_REFERENCE).astype(int)]
        return ref

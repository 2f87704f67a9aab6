"""ADWIN: an adaptive window that drops its oldest part when the old and new means differ.

Written from Bifet & Gavalda, "Learning from Time-Changing Data with Adaptive Windowing"
(SDM 2007), ADWIN2: the window is stored as an exponential histogram (at most
``max_buckets`` buckets of each size 1, 2, 4, ...), each bucket keeping its sum and its
sum of squared deviations, so memory and the cut check are O(log W). Every ``clock``
values every bucket boundary splits the window into an old part W0 and a recent part W1;
the window is cut when

    |mean(W0) - mean(W1)| > sqrt(2/m * var(W) * ln(2/d)) + 2/(3m) * ln(2/d)

with ``m = 1 / (1/n0 + 1/n1)`` and ``d = delta / ln(W)`` (the paper's Bernstein bound with a
union bound over the checked cuts).
"""

from __future__ import annotations

import math

from components.monitor._detector import DriftDetector


class ADWIN(DriftDetector):
    """Adaptive windowing over a stream of values in [0, 1] (e.g. 0/1 prediction errors).

    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> stream = np.r_[rng.random(1000) < 0.1, rng.random(1000) < 0.4].astype(float)
    >>> adwin = ADWIN(delta=0.002)
    >>> [i for i, x in enumerate(stream) if adwin.update(x)]
    [1087, 1119, 1183]
    """

    def __init__(self, delta: float = 0.002, clock: int = 32, max_buckets: int = 5, min_window_length: int = 5, grace_period: int = 10) -> None:
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if clock < 1 or max_buckets < 2 or min_window_length < 1 or grace_period < 0:
            raise ValueError("clock >= 1, max_buckets >= 2, min_window_length >= 1 and grace_period >= 0 are required")
        self.delta = delta
        self.clock = clock
        self.max_buckets = max_buckets
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        # rows[i] holds buckets of 2**i values, oldest first; a bucket is [sum, sum of squared deviations]
        self._rows: list[list[list[float]]] = [[]]
        self._width = 0
        self._total = 0.0
        self._variance = 0.0  # sum of squared deviations over the whole window
        self.threshold = 1.0  # statistic = max |mean diff| / cut bound; a cut when > 1

    @property
    def width(self) -> int:
        """Values in the current window."""
        return self._width

    @property
    def estimation(self) -> float:
        """Mean of the current window."""
        return self._total / self._width if self._width else 0.0

    def update(self, x: float) -> bool:
        self._drift_detected = False
        self.n_seen += 1
        self._insert(float(x))
        if self.n_seen % self.clock == 0 and self._width > self.grace_period:
            while self._cut_found():
                self._drift_detected = True
                self._drop_oldest()
        return self._drift_detected

    def _insert(self, x: float) -> None:
        if self._width:
            self._variance += self._width * (x - self._total / self._width) ** 2 / (self._width + 1)
        self._width += 1
        self._total += x
        self._rows[0].append([x, 0.0])
        size = 1
        for i, row in enumerate(self._rows):
            if len(row) <= self.max_buckets:
                break
            (s1, v1), (s2, v2) = row[0], row[1]
            del row[:2]
            merged = [s1 + s2, v1 + v2 + size * size / (2 * size) * (s1 / size - s2 / size) ** 2]
            if i + 1 == len(self._rows):
                self._rows.append([])
            self._rows[i + 1].append(merged)  # newer than everything already in the next row
            size *= 2

    def _cut_found(self) -> bool:
        width = self._width
        if width < 2 * self.min_window_length:
            return False
        log_term = math.log(2 * math.log(width) / self.delta)
        var = self._variance / width
        n0, s0 = 0, 0.0
        best = 0.0
        for i in range(len(self._rows) - 1, -1, -1):  # oldest buckets live in the highest row
            size = 1 << i
            for s, _ in self._rows[i]:
                n0 += size
                s0 += s
                n1 = width - n0
                if n1 < self.min_window_length:
                    self.statistic = best
                    return False
                if n0 < self.min_window_length:
                    continue
                m = 1 / (1 / n0 + 1 / n1)
                bound = math.sqrt(2 / m * var * log_term) + 2 / (3 * m) * log_term
                ratio = abs(s0 / n0 - (self._total - s0) / n1) / bound
                best = max(best, ratio)
                if ratio > 1:
                    self.statistic = ratio
                    return True
        self.statistic = best
        return False

    def _drop_oldest(self) -> None:
        i = len(self._rows) - 1
        s, v = self._rows[i].pop(0)
        size = 1 << i
        rest = self._width - size
        if rest > 0:
            mean_rest = (self._total - s) / rest
            self._variance -= v + size * rest / self._width * (s / size - mean_rest) ** 2
        else:
            self._variance = 0.0
        self._variance = max(self._variance, 0.0)
        self._width = rest
        self._total -= s
        if not self._rows[i] and i > 0:
            self._rows.pop()

"""What a scenario is: its columns, its calendar, its drift onset, plus small shared helpers.

>>> spec = ScenarioSpec(name="demo", entity="id", timestamp="event_timestamp", label="y",
...     features=("x",), categorical_features=(), segment=None, period="day",
...     start=utc("2025-01-01"), end=utc("2025-01-03"), onset=utc("2025-01-02"),
...     drift="x shifts", default_rows=10, label_delay="minutes")
>>> spec.columns
['id', 'event_timestamp', 'x', 'y', 'label_timestamp']
>>> [str(p.date()) for p in spec.periods()]
['2025-01-01', '2025-01-02', '2025-01-03']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Period = Literal["month", "day", "hour"]
_FREQ = {"month": "MS", "day": "D", "hour": "h"}
_OFFSET = {"month": pd.DateOffset(months=1), "day": pd.Timedelta(days=1), "hour": pd.Timedelta(hours=1)}


def utc(text: str) -> pd.Timestamp:
    """A UTC timestamp (every scenario timestamp is timezone-aware UTC, as Feast expects).

    >>> utc("2025-07-01").isoformat()
    '2025-07-01T00:00:00+00:00'
    """
    return pd.Timestamp(text, tz="UTC")


@dataclass(frozen=True)
class ScenarioSpec:
    """One seed scenario: column names (matching ``policies/<name>.yaml``), calendar and drift.

    ``start`` and ``end`` are the first and last period starts (inclusive); ``onset`` is the
    first timestamp that follows the drifted process; ``onset2`` is a second drift (recsys).
    ``label_delay`` says when labels become known: ``"period_end"``, ``"hours"`` (2-6 h) or
    ``"minutes"`` (1-30 min).
    """

    name: str
    entity: str
    timestamp: str
    label: str
    features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    segment: str | None
    period: Period
    start: pd.Timestamp
    end: pd.Timestamp
    onset: pd.Timestamp
    drift: str
    default_rows: int
    label_delay: Literal["period_end", "hours", "minutes"]
    onset2: pd.Timestamp | None = None
    segment_values: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """Output columns in order: entity, timestamp, features, categoricals, segment, label, label_timestamp."""
        cols = [self.entity, self.timestamp, *self.features, *self.categorical_features]
        if self.segment and self.segment not in cols:
            cols.append(self.segment)
        return [*cols, self.label, "label_timestamp"]

    def periods(self) -> pd.DatetimeIndex:
        """Every period start from ``start`` to ``end`` inclusive."""
        return pd.date_range(self.start, self.end, freq=_FREQ[self.period])

    def period_length(self) -> pd.DateOffset | pd.Timedelta:
        """One period, to add to a period start."""
        return _OFFSET[self.period]


def choice(rng: np.random.Generator, values: tuple[str, ...], n: int, p: np.ndarray | list[float] | None = None) -> np.ndarray:
    """``n`` draws of string ``values`` (vectorised; returns an object array of str).

    >>> choice(np.random.default_rng(0), ("a", "b"), 3, p=[1.0, 0.0]).tolist()
    ['a', 'a', 'a']
    """
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p)]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function.

    >>> float(sigmoid(np.array([0.0]))[0])
    0.5
    """
    return 1.0 / (1.0 + np.exp(-z))


def bernoulli(rng: np.random.Generator, logit: np.ndarray) -> np.ndarray:
    """0/1 draws with P(1) = sigmoid(logit), as int64."""
    return (rng.random(logit.shape[0]) < sigmoid(logit)).astype(np.int64)


def spread_in_periods(rng: np.random.Generator, starts: pd.DatetimeIndex, period_seconds: np.ndarray | float) -> pd.DatetimeIndex:
    """Event times uniformly inside each period (whole seconds), so times are rarely equal."""
    offsets = np.floor(rng.random(len(starts)) * np.asarray(period_seconds)).astype("int64")
    return starts + pd.to_timedelta(offsets, unit="s")


def label_times(rng: np.random.Generator, spec: ScenarioSpec, events: pd.DatetimeIndex, period_starts: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """When each row's label becomes known, per ``spec.label_delay``."""
    n = len(events)
    if spec.label_delay == "period_end":
        return period_starts + spec.period_length()
    if spec.label_delay == "hours":
        return events + pd.to_timedelta(rng.integers(2 * 3600, 6 * 3600 + 1, n), unit="s")
    return events + pd.to_timedelta(rng.integers(60, 30 * 60 + 1, n), unit="s")

"""Which rows to train on: the training set for a retraining strategy, split by time.

Strategies (``policy.actions[].strategy``):

- ``full``: all labelled history up to ``end``;
- ``recent_window``: the last ``window`` (``"14d"``, ``"12M"``...) up to ``end``;
- ``cohort``: a *specialist*: only that cohort's rows inside the window (the action's
  ``window``; none means all history); with ``upweight`` instead every cohort's rows, the
  cohort's weighted up (a global model, not a specialist);
- ``emergency``: only the most recent labelled rows (``window``, default ten policy
  periods), refusing to train on fewer than ``min_rows``.

A row counts as labelled at ``end`` only if its label is known by then
(``label_timestamp <= end`` when the data has that column), so a retrain never peeks at
labels from the future. The holdout is the latest ``policy.trainer.holdout`` share of the
window by time and is always strictly later than every training row.

>>> import pandas as pd
>>> from components.policy import policy_from_dict
>>> policy = policy_from_dict({"model": "m", "entity": "id", "label": "y", "features": ["x"],
...     "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.8}]})
>>> df = pd.DataFrame({"id": range(20), "x": range(20), "y": [0, 1] * 10,
...     "event_timestamp": pd.date_range("2025-01-01", periods=20, freq="D")})
>>> ts = build_training_set(policy, "recent_window", end="2025-01-20", window="10d", source=df)
>>> len(ts.train), len(ts.holdout), ts.train["event_timestamp"].max() < ts.holdout["event_timestamp"].min()
(8, 2, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.errors import ConfigError, DataError
from components.policy import Policy, SequentialMonitor, parse_window
from components.settings import Settings

STRATEGIES = ("full", "recent_window", "cohort", "emergency")
LABEL_TIMESTAMP = "label_timestamp"
_PERIOD_WINDOW = {"hour": "10h", "day": "10d", "month": "10M"}  # emergency default: ten periods


@dataclass(frozen=True)
class TrainingData:
    """A training set and its later holdout, with where they came from.

    ``weights`` is ``None`` or one sample weight per ``train`` row (cohort up-weighting).
    """

    train: pd.DataFrame
    holdout: pd.DataFrame
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    strategy: str
    cohort: str | None = None
    weights: np.ndarray | None = None

    @property
    def window(self) -> str:
        """``start/end`` in ISO format, the rows' time range as recorded in the registry (``driftloop.window``).

        Not to be confused with a training-window *length* such as ``"48h"`` (the
        ``window`` argument of :func:`build_training_set`), which decides ``start``.
        """
        return f"{self.window_start.isoformat()}/{self.window_end.isoformat()}"


def build_training_set(
    policy: Policy,
    strategy: str,
    end: Any,
    window: str | None = None,
    cohort: str | None = None,
    settings: Settings | None = None,
    source: pd.DataFrame | str | Path | None = None,
    *,
    upweight: float | None = None,
    min_rows: int | None = None,
) -> TrainingData:
    """Build the training set for ``strategy`` ending at ``end`` (inclusive).

    ``window``, ``upweight`` and ``min_rows`` default to the policy's first action with
    the same strategy. ``source`` is a DataFrame or a parquet path; ``None`` reads the
    point-in-time training set from Feast (``components.features.training_set``).
    Raises :class:`DataError` for an empty window, missing labels or a single label class.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown training strategy {strategy!r}", fix=f"use one of {', '.join(STRATEGIES)}")
    action = next((a for a in policy.actions if a.action == "retrain" and a.strategy == strategy), None)
    window = window or (action.window if action else None)
    upweight = upweight if upweight is not None else (action.upweight if action else None)
    min_rows = min_rows if min_rows is not None else (action.min_rows if action else 200)
    end_ts = _utc(pd.Timestamp(end), "end")
    if strategy == "recent_window" and not window:
        raise ConfigError("strategy recent_window needs a window", fix="pass --window (e.g. 14d) or set actions[].window in the policy")
    if strategy == "emergency" and not window:
        window = _PERIOD_WINDOW[policy.period]
    if strategy == "cohort" and not cohort:
        raise ConfigError("strategy cohort needs a cohort value", fix="pass --cohort or set actions[].cohort in the policy")
    start_ts = _window_start(end_ts, window) if window else None

    frame = _load(policy, source, start_ts, end_ts, cohort if strategy == "cohort" and upweight is None else None, settings)
    frame = _labelled_rows(policy, frame, start_ts, end_ts)
    weights = None
    if strategy == "cohort":
        column = cohort_column(policy)
        known = sorted(map(str, frame[column].dropna().unique()))
        in_cohort = frame[column].astype(str) == str(cohort)
        if not in_cohort.any():
            raise DataError(f"cohort {cohort!r} has no labelled rows in column {column!r} up to {end_ts}", fix=f"use one of {known}")
        if upweight is None:
            frame = frame[in_cohort]
        else:
            weights = np.where(in_cohort, float(upweight), 1.0)
    if strategy == "emergency" and len(frame) < min_rows:
        raise DataError(
            f"emergency retrain found only {len(frame)} labelled rows in the last {window} before {end_ts} (min_rows {min_rows})",
            fix="wait for more labels, widen actions[].window, or lower actions[].min_rows",
        )
    train, holdout, w_train = _split_by_time(policy, frame, weights)
    _check_classes(policy, train, "training set")
    _check_classes(policy, holdout, "holdout")
    first = frame[policy.timestamp].min()
    return TrainingData(
        train=train.reset_index(drop=True),
        holdout=holdout.reset_index(drop=True),
        window_start=start_ts if start_ts is not None else first,
        window_end=end_ts,
        strategy=strategy,
        cohort=cohort if strategy == "cohort" else None,
        weights=w_train,
    )


def specialist_cohort(data: TrainingData) -> str | None:
    """The cohort a training set makes a specialist for: its cohort when it holds only that cohort's rows (not up-weighted).

    >>> import pandas as pd
    >>> empty = pd.DataFrame()
    >>> t = pd.Timestamp("2025-01-01", tz="UTC")
    >>> specialist_cohort(TrainingData(empty, empty, t, t, "cohort", "casual")), specialist_cohort(TrainingData(empty, empty, t, t, "full"))
    ('casual', None)
    """
    return data.cohort if data.strategy == "cohort" and data.cohort is not None and data.weights is None else None


def training_cohorts(policy: Policy, data: TrainingData) -> list[str]:
    """The cohort values present in the training rows (sorted), as the demo's summary reports them.

    >>> import pandas as pd
    >>> from components.policy import load_policy
    >>> t = pd.Timestamp("2025-01-01", tz="UTC")
    >>> rows = pd.DataFrame({"user_cohort": ["power", "casual", "casual"]})
    >>> training_cohorts(load_policy("recsys"), TrainingData(rows, rows, t, t, "full"))
    ['casual', 'power']
    """
    column = cohort_column(policy)
    return sorted(map(str, data.train[column].dropna().unique())) if column in data.train.columns else []


def cohort_column(policy: Policy) -> str:
    """The column that names cohorts: the policy's segment column, else a sequential monitor's.

    >>> from components.policy import load_policy
    >>> cohort_column(load_policy("recsys"))
    'user_cohort'
    """
    if policy.segment_column:
        return policy.segment_column
    for m in policy.monitors:
        if isinstance(m, SequentialMonitor):
            return m.cohort_column
    raise ConfigError(f"policy {policy.model!r} has no cohort column", fix="add segments.column or a sequential monitor's cohort_column")


def _utc(ts: pd.Timestamp, name: str) -> pd.Timestamp:
    if pd.isna(ts):
        raise ConfigError(f"{name} is not a timestamp", fix="give an ISO timestamp such as 2025-09-01T00:00:00")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _window_start(end: pd.Timestamp, window: str) -> pd.Timestamp:
    try:
        count, unit = parse_window(window)
    except ValueError as exc:
        raise ConfigError(str(exc), fix="use a window like 48h, 14d, 2w or 12M") from None
    offset = pd.DateOffset(months=count) if unit == "months" else pd.Timedelta(**{unit: count})
    return end - offset


def _load(
    policy: Policy,
    source: pd.DataFrame | str | Path | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp,
    cohort: str | None,
    settings: Settings | None,
) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    elif source is not None:
        path = Path(source)
        if not path.exists():
            raise DataError(f"training data {str(path)!r} not found", fix="give a parquet file, e.g. from 'driftloop scenario'")
        frame = pd.read_parquet(path)
    else:
        frame = _from_feast(policy, start, end, cohort, settings or Settings.from_env())
    needed = [policy.timestamp, policy.label, *policy.all_features]
    if policy.segment_column:
        needed.append(policy.segment_column)
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise DataError(f"training data lacks columns {missing}", fix="add them or correct policy.features / label / timestamp / segments")
    frame[policy.timestamp] = _utc_series(frame[policy.timestamp], policy.timestamp)
    if LABEL_TIMESTAMP in frame.columns:
        frame[LABEL_TIMESTAMP] = _utc_series(frame[LABEL_TIMESTAMP], LABEL_TIMESTAMP)
    return frame


def _from_feast(policy: Policy, start: pd.Timestamp | None, end: pd.Timestamp, cohort: str | None, settings: Settings) -> pd.DataFrame:
    try:
        from components.features import training_set
    except ImportError:
        raise ConfigError("no training data given and the Feast feature store is not available", fix="pass a parquet file with --data") from None
    first = start if start is not None else pd.Timestamp("1970-01-01", tz="UTC")
    # Feast's window is [start, end); ours is (start, end]: nudge end by 1 us, labels known by end
    return training_set(policy, first, end + pd.Timedelta(microseconds=1), cohort=cohort, settings=settings, known_by=end)


def _utc_series(values: pd.Series, name: str) -> pd.Series:
    try:
        out = pd.to_datetime(values)
    except (ValueError, TypeError) as exc:
        raise DataError(f"column {name!r} is not a timestamp: {exc}", fix="store it as a datetime or ISO string") from None
    return out.dt.tz_localize("UTC") if out.dt.tz is None else out.dt.tz_convert("UTC")


def _labelled_rows(policy: Policy, frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp) -> pd.DataFrame:
    ts = frame[policy.timestamp]
    in_window = (ts <= end) if start is None else (ts > start) & (ts <= end)
    rows = frame[in_window]
    where = f"between {start} and {end}" if start is not None else f"up to {end}"
    if rows.empty:
        raise DataError(f"no rows {where} (data spans {ts.min()} .. {ts.max()})", fix="choose another --end or --window")
    known = rows[policy.label].notna()
    if LABEL_TIMESTAMP in rows.columns:
        known &= rows[LABEL_TIMESTAMP].notna() & (rows[LABEL_TIMESTAMP] <= end)
    if not known.any():
        raise DataError(
            f"labels missing for the window: none of the {len(rows)} rows {where} has a {policy.label!r} known by {end}",
            fix="wait for labels to arrive or move --end later",
        )
    return rows[known].sort_values(policy.timestamp, kind="stable")


def _split_by_time(policy: Policy, frame: pd.DataFrame, weights: np.ndarray | None) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray | None]:
    ts = frame[policy.timestamp].to_numpy()
    cut_index = int(np.floor(len(frame) * (1 - policy.trainer.holdout)))
    cut_index = min(max(cut_index, 1), len(frame) - 1) if len(frame) > 1 else 0
    cut = ts[cut_index] if len(frame) else None
    is_train = ts < cut if cut is not None else np.zeros(0, dtype=bool)
    train, holdout = frame[is_train], frame[~is_train]
    if train.empty or holdout.empty:
        raise DataError(
            f"cannot split {len(frame)} labelled rows by time into training and holdout (all share one timestamp or too few rows)",
            fix="use a longer window or more data",
        )
    return train, holdout, (weights[is_train] if weights is not None else None)


def _check_classes(policy: Policy, frame: pd.DataFrame, what: str) -> None:
    counts = frame[policy.label].astype(int).value_counts()
    if len(counts) < 2:
        only = int(counts.index[0]) if len(counts) else None
        raise DataError(
            f"the {what} has a single label class ({policy.label}={only} in all {len(frame)} rows)",
            fix="use a longer window or check the label column",
        )

"""Time ranges of data: parse a time parameter, select rows in a range, default the monitored windows.

"Window" means several things in driftloop; this module holds the *monitoring windows*
(the ``reference`` and ``current`` time ranges a monitor run compares) and the row
selection by time range. The *training window* (a length such as ``"48h"`` that a retrain
action trains on) lives in the policy and :mod:`components.training.datasets`.

>>> from components.policy import resolve_policy
>>> w = resolve_monitoring_windows(resolve_policy("fraud"), utc("2025-03-02T10:30:00Z"))
>>> w["current_start"], w["current_end"]
('2025-03-02T10:00:00+00:00', '2025-03-02T11:00:00+00:00')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.errors import ConfigError, DataError
from components.policy import resolve_policy  # noqa: F401 (doctests)

if TYPE_CHECKING:
    import pandas as pd

    from components.policy import Policy
    from components.settings import Settings

_PERIOD_OFFSET = {"hour": {"hours": 1}, "day": {"days": 1}, "month": {"months": 1}}


def parse_time(text: str, field: str) -> pd.Timestamp | None:
    """An ISO timestamp parameter as UTC; empty means "not set" (the latest data).

    >>> parse_time("2025-07-01", "start").isoformat()
    '2025-07-01T00:00:00+00:00'
    >>> parse_time("", "end") is None
    True
    """
    import pandas as pd

    if not text:
        return None
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(f"pipeline parameter {field!r} = {text!r} is not a timestamp", fix="use ISO format, e.g. 2025-07-01T00:00:00Z") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def utc(text: str) -> pd.Timestamp:
    """A UTC timestamp from ISO text (for examples and tests).

    >>> utc("2025-03-02T10:30:00+02:00").isoformat()
    '2025-03-02T08:30:00+00:00'
    """
    import pandas as pd

    return pd.Timestamp(text).tz_convert("UTC")


def read_source(source: str, policy: Policy) -> pd.DataFrame:
    """Rows from a parquet file, a directory of parquet files, or ``scenario:<name>[:rows]``."""
    from components.tables import read_table

    return read_table(source, "data source", policy.timestamp)


def select_time_range(frame: pd.DataFrame, policy: Policy, start: str, end: str) -> pd.DataFrame:
    """Rows with ``start <= timestamp < end`` (either bound may be empty = open).

    >>> import pandas as pd
    >>> p = resolve_policy("churn")
    >>> f = pd.DataFrame({"event_timestamp": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01"], utc=True)})
    >>> len(select_time_range(f, p, "2025-02-01", ""))
    2
    """
    import pandas as pd

    ts = pd.to_datetime(frame[policy.timestamp], utc=True)
    mask = pd.Series(True, index=frame.index)
    lo, hi = parse_time(start, "start"), parse_time(end, "end")
    if lo is not None:
        mask &= ts >= lo
    if hi is not None:
        mask &= ts < hi
    return frame.loc[mask].reset_index(drop=True)


def select_rows(frame: pd.DataFrame, policy: Policy, start: str, end: str, cohort: str = "") -> pd.DataFrame:
    """Rows in ``[start, end)`` and, when ``cohort`` is given, of that segment value only.

    >>> import pandas as pd
    >>> p = resolve_policy("credit")
    >>> f = pd.DataFrame({"event_timestamp": pd.to_datetime(["2025-01-01", "2025-02-01"], utc=True), "segment": ["prime", "subprime"]})
    >>> select_rows(f, p, "", "", "subprime")["segment"].tolist()
    ['subprime']
    """
    rows = select_time_range(frame, policy, start, end)
    column = policy.segment_column or ""
    if cohort and column in rows:
        rows = rows[rows[column].astype(str) == cohort].reset_index(drop=True)
    return rows


def validate_frame(frame: pd.DataFrame, policy: Policy, min_rows: int = 1, need_label: bool = True) -> dict[str, float]:
    """Check a data window against the policy; return figures to log as task metrics.

    Missing columns and an empty window raise :class:`DataError` naming the column and fix.

    >>> import pandas as pd
    >>> p = resolve_policy("churn")
    >>> f = pd.DataFrame({c: [1, None] for c in [p.timestamp, p.label, *p.all_features]})
    >>> validate_frame(f, p)["max_null_share"]
    0.5
    >>> validate_frame(f.drop(columns=["region"]), p)
    Traceback (most recent call last):
    ...
    components.errors.DataError: data lacks columns ['region'] that the policy names (fix: ...)
    """
    columns = [policy.timestamp, *policy.all_features] + ([policy.label] if need_label else [])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"data lacks columns {missing} that the policy names", fix="add them to the feature view / data source or remove them from the policy")
    if len(frame) < min_rows:
        raise DataError(f"data window has {len(frame)} rows, fewer than the {min_rows} required", fix="widen the window (start/end) or check the data source")
    nulls = frame[columns].isna().mean()
    figures = {"rows": float(len(frame)), "max_null_share": float(nulls.max()) if len(frame) else 0.0}
    if need_label and len(frame):
        figures["label_rate"] = float(frame[policy.label].astype(float).mean())
    return figures


def period_start(ts: pd.Timestamp, period: str) -> pd.Timestamp:
    """The start of the policy period holding ``ts``.

    >>> period_start(utc("2025-03-02T10:30:00Z"), "month").isoformat()
    '2025-03-01T00:00:00+00:00'
    >>> period_start(utc("2025-03-02T10:30:00Z"), "hour").isoformat()
    '2025-03-02T10:00:00+00:00'
    """
    if period == "month":
        return ts.normalize().replace(day=1)
    return ts.floor("h" if period == "hour" else "D")


def resolve_monitoring_windows(policy: Policy, latest: pd.Timestamp, current_start: str = "", current_end: str = "",
                               reference_start: str = "", reference_end: str = "") -> dict[str, str]:
    """Fill empty bounds of the reference and current windows so a scheduled run monitors the latest period.

    ``current_end`` defaults to the end of the policy period holding ``latest``,
    ``current_start`` to one period before it, ``reference_end`` to ``current_start``; an
    empty ``reference_start`` stays open (all history).

    >>> w = resolve_monitoring_windows(resolve_policy("fraud"), utc("2025-03-02T10:30:00Z"))
    >>> w["current_start"], w["current_end"], w["reference_end"]
    ('2025-03-02T10:00:00+00:00', '2025-03-02T11:00:00+00:00', '2025-03-02T10:00:00+00:00')
    """
    import pandas as pd

    step = pd.DateOffset(**_PERIOD_OFFSET[policy.period])
    end = parse_time(current_end, "current_end") or (period_start(latest, policy.period) + step)
    start = parse_time(current_start, "current_start") or (end - step)
    ref_end = parse_time(reference_end, "reference_end") or start
    ref_start = parse_time(reference_start, "reference_start")
    if ref_end > start:
        raise ConfigError(f"reference window ends at {ref_end} after the current window starts at {start}", fix="make reference_end <= current_start")
    return {"current_start": start.isoformat(), "current_end": end.isoformat(), "reference_start": ref_start.isoformat() if ref_start is not None else "",
            "reference_end": ref_end.isoformat()}


def latest_timestamp(policy: Policy, source: str) -> pd.Timestamp:
    """The newest event time in ``source``; for the feature store, a time in the last complete period."""
    import pandas as pd

    if not source:
        # A scheduled run at the start of a period monitors the period that just ended.
        return pd.Timestamp.now(tz="UTC") - pd.DateOffset(**_PERIOD_OFFSET[policy.period])
    frame = read_source(source, policy)
    return pd.to_datetime(frame[policy.timestamp], utc=True).max()


def monitoring_windows(policy: Policy, source: str, current_start: str = "", current_end: str = "",
                       reference_start: str = "", reference_end: str = "") -> dict[str, str]:
    """:func:`resolve_monitoring_windows` with ``latest`` read from ``source`` only when an end must be defaulted.

    >>> monitoring_windows(resolve_policy("churn"), "no-such-file", "2025-06-01", "2025-07-01")["reference_end"]
    '2025-06-01T00:00:00+00:00'
    """
    import pandas as pd

    latest = latest_timestamp(policy, source) if not current_end else pd.Timestamp(0, tz="UTC")
    return resolve_monitoring_windows(policy, latest, current_start, current_end, reference_start, reference_end)


def rows_for(policy: Policy, start: str, end: str, source: str, cohort: str, settings: Settings) -> pd.DataFrame:
    """Point-in-time rows for ``[start, end)``: the Feast training set when ``source`` is empty, else the source's rows.

    The one data-window reader of the monitor pipeline's ``get_features`` step.
    """
    if source:
        return select_rows(read_source(source, policy), policy, start, end, cohort)
    from components.features import training_set

    return training_set(policy, parse_time(start, "start"), parse_time(end, "end"), cohort=cohort or None, settings=settings)

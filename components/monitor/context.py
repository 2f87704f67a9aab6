"""The monitors' shared inputs: both windows prepared once, scoped by segment, with the baseline.

:func:`prepare_window` puts a window in time order (row positions in ``detected_at`` refer
to that order) and adds the predicted class; :class:`MonitorContext` hands each monitor
runner (``components.monitor.runners``) the reference and current rows of its scope, the
labelled rows, and the champion's baseline metric.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from components.metrics import predicted_class
from components.monitor.results import TestResult

if TYPE_CHECKING:
    from components.monitor.profile import ReferenceProfile, ScopeProfile
    from components.policy import Policy

PROFILE_TYPES = ("feature_drift", "prediction_drift", "label_drift")  # the monitors a reference profile can serve

PRED_LABEL = "_driftloop_pred_label"  # thresholded prediction, added for slicing


def prepare_window(policy: Policy, df: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as UTC datetimes, rows in time order (stable, so ties keep input order).

    Copies only what changes: a window already in time order with UTC timestamps (what a
    prediction log or a parquet export holds) shares its columns with ``df``, which is left
    as it was (a full copy of a 1M x 50 window cost seconds, three times per window).

    >>> from components.policy import load_policy
    >>> df = pd.DataFrame({"event_timestamp": ["2025-01-02", "2025-01-01"], "x": [2.0, 1.0]})
    >>> prepare_window(load_policy("churn"), df)["x"].tolist(), df["x"].tolist()
    ([1.0, 2.0], [2.0, 1.0])
    """
    out = df.copy(deep=False)  # new column list; setting a column below never writes into df
    ts = out[policy.timestamp]
    if not (isinstance(ts.dtype, pd.DatetimeTZDtype) and str(ts.dtype.tz) == "UTC"):
        out[policy.timestamp] = ts = pd.to_datetime(ts, utc=True)
    if not ts.is_monotonic_increasing:
        out = out.sort_values(policy.timestamp, kind="mergesort")
    if not isinstance(out.index, pd.RangeIndex) or out.index.start != 0 or out.index.step != 1:
        out.index = pd.RangeIndex(len(out))
    if policy.prediction in out.columns:
        out[PRED_LABEL] = predicted_class(out[policy.prediction])
    return out


def window_summary(policy: Policy, df: pd.DataFrame) -> dict[str, Any]:
    """``{"start", "end", "rows", "labelled"}`` of a prepared window."""
    ts = df[policy.timestamp]
    labelled = int(df[policy.label].notna().sum()) if policy.label in df.columns else 0
    return {"start": ts.iloc[0].isoformat(), "end": ts.iloc[-1].isoformat(), "rows": len(df), "labelled": labelled}


@dataclasses.dataclass
class MonitorContext:
    """The policy, both prepared windows, the champion's baseline metrics and the reference profile, if any.

    ``cohort_references`` maps a cohort served by its own specialist to that specialist's
    reference rows; every other cohort's reference is the global reference filtered to it.

    With a ``profile`` the drift monitors it covers (:meth:`uses_profile`) read the
    reference's sorted columns and counts from it instead of ``ref``.
    """

    policy: Policy
    ref: pd.DataFrame
    cur: pd.DataFrame
    baseline: dict[str, Any]
    profile: ReferenceProfile | None = None
    # a cohort's own reference rows (its specialist's registered reference sample): the per-cohort
    # monitors compare that cohort with them, not with the global reference's rows of the cohort
    cohort_references: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)

    def uses_profile(self, m: Any) -> bool:
        """Whether monitor ``m`` runs on the reference profile (:func:`profile_serves`)."""
        return self.profile is not None and profile_serves(self.policy, self.profile, m)

    def profile_scope(self, m: Any, segment: str | None) -> ScopeProfile | None:
        """The profiled reference of ``m``'s scope ``segment``, when ``m`` runs on the profile."""
        return self.profile.scope(segment) if self.profile is not None and self.uses_profile(m) else None

    def reference_values(self, m: Any, column: str, segment: str | None, categorical: bool) -> pd.Series:
        """The reference's values of ``column`` in a scope (from the profile when ``m`` uses it), for plots."""
        scope = self.profile_scope(m, segment)
        if scope is None:
            ref = self.ref if segment is None else self.segment_rows(self.ref, self.policy.segment_column, segment)
            return ref[column]
        if categorical:
            counts = scope.categorical[column][0]
            return pd.Series(np.repeat(np.array(list(counts), dtype=object), list(counts.values())))
        return pd.Series(scope.numeric[column][0])

    def scopes(self, m: Any) -> list[tuple[str | None, pd.DataFrame, pd.DataFrame]]:
        """(segment, reference rows, current rows) for the whole window and/or each segment."""
        seg_col = self.policy.segment_column
        if m.segment is not None:
            return [(m.segment, self.segment_rows(self.ref, seg_col, m.segment), self.segment_rows(self.cur, seg_col, m.segment))]
        scopes: list[tuple[str | None, pd.DataFrame, pd.DataFrame]] = [(None, self.ref, self.cur)]
        if m.per_segment and self.policy.segments:
            for value in self.policy.segments.values:
                scopes.append((value, self.segment_rows(self.ref, seg_col, value), self.segment_rows(self.cur, seg_col, value)))
        return scopes

    @staticmethod
    def segment_rows(df: pd.DataFrame, col: str | None, value: str) -> pd.DataFrame:
        return df[df[col].astype(str) == value]

    def labelled(self, df: pd.DataFrame, scored: bool = False) -> pd.DataFrame:
        """Rows whose label is known (and, if ``scored``, that also have a prediction)."""
        if self.policy.label not in df.columns:
            return df.iloc[0:0]
        keep = df[self.policy.label].notna()
        if scored:
            keep &= df[self.policy.prediction].notna()
        return df[keep]

    def baseline_metric(self, metric: str, segment: str | None) -> float | None:
        """The champion's metric from ``baseline``, else computed on the labelled reference."""
        b = self.baseline
        if segment is not None and metric in ((b.get("segments") or {}).get(segment) or {}):
            return float(b["segments"][segment][metric])
        if segment is None:
            if metric in (b.get("overall") or {}):
                return float(b["overall"][metric])
            if isinstance(b.get(metric), int | float):
                return float(b[metric])
        ref = self.labelled(self.ref, scored=True)
        if segment is not None:
            ref = self.segment_rows(ref, self.policy.segment_column, segment)
        if len(ref) == 0 or ref[self.policy.label].nunique() < 2 and metric in ("auc", "gini"):
            return None
        from components.monitor.performance import compute_metrics

        value = compute_metrics(ref[self.policy.label].astype(int).to_numpy(), ref[self.policy.prediction].to_numpy()).get(metric)
        return None if value is None or not np.isfinite(value) else float(value)


def profile_serves(policy: Policy, profile: ReferenceProfile, m: Any) -> bool:
    """Whether a reference profile holds what monitor ``m`` reads from the reference: every scope and column.

    Feature (without ``tabular`` or ``multivariate``), prediction and label drift can run
    on one; the other monitors need the reference rows.
    """
    if m.type not in PROFILE_TYPES or getattr(m, "tabular", False) or getattr(m, "multivariate", None):
        return False
    if m.type == "feature_drift":
        features = m.features or policy.all_features
        numeric, categorical = [f for f in features if f in policy.features], [f for f in features if f in policy.categorical_features]
    else:
        numeric, categorical = ([policy.prediction], []) if m.type == "prediction_drift" else ([], [policy.label])
    segments = [m.segment] if m.segment is not None else [None, *(policy.segments.values if m.per_segment and policy.segments else [])]
    for seg in segments:
        scope = profile.scope(seg)
        if scope is None:
            return False
        if scope.rows == 0 or (m.type == "label_drift" and scope.labelled == 0):
            continue  # insufficient data either way
        if any(c not in scope.numeric for c in numeric) or any(c not in scope.categorical for c in categorical):
            return False
    return True


def profile_covers(policy: Policy, profile: ReferenceProfile) -> bool:
    """Whether the profile serves every monitor of the policy (then no reference rows are needed)."""
    return all(profile_serves(policy, profile, m) for m in policy.monitors)


def insufficient(test: str, n: int, need: int, **labels: Any) -> TestResult:
    """An ``insufficient_data`` result: ``n`` rows where the monitor needs ``need``."""
    return TestResult(test=test, statistic=None, p_value=None, threshold=None, drift=False, status="insufficient_data",
                      details={"n": n, "min_samples": need}, **labels)


def row_of(positions: np.ndarray, stream_pos: int | None) -> int | None:
    """Map a position in a filtered stream back to its row in the full time-ordered window."""
    if stream_pos is None or stream_pos < 0 or stream_pos >= len(positions):
        return stream_pos
    return int(positions[stream_pos])

"""Check reference and current data against the policy before any test runs.

Every problem a user can fix raises :class:`~components.errors.DataError` naming the frame,
the column and the fix (a misspelt column suggests the closest name). A label column that
is absent (labels not joined yet) is not an error: it comes back as a warning and the
performance monitors report insufficient data.

>>> import pandas as pd
>>> from components.policy import Policy
>>> policy = Policy.model_validate({"model": "m", "entity": "id", "label": "y",
...     "features": ["age"], "monitors": [{"name": "l", "type": "label_drift"}]})
>>> ref = pd.DataFrame({"event_timestamp": pd.date_range("2025-01-01", periods=3, freq="D"), "age": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
>>> validate_inputs(policy, ref, ref.drop(columns="y"))
["current data has no label column 'y': label_drift and performance monitors report insufficient data"]
>>> validate_inputs(policy, ref, ref.rename(columns={"age": "agee"}))
Traceback (most recent call last):
...
components.errors.DataError: current data has no column 'age' (policy.features) (fix: did you mean 'agee'? rename the column or fix the policy)
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

import pandas as pd
from pandas.api import types as ptypes

from components.errors import DataError
from components.policy import (
    ConceptDriftMonitor,
    PerformanceMonitor,
    Policy,
    PredictionDriftMonitor,
    SequentialMonitor,
)

if TYPE_CHECKING:
    from components.monitor.profile import ReferenceProfile

LABEL_MONITORS = ("label_drift", "performance", "concept_drift")


def required_columns(policy: Policy) -> dict[str, str]:
    """Columns the policy's monitors need, each with the policy field that asks for it.

    >>> from components.policy import load_policy
    >>> cols = required_columns(load_policy("recsys"))
    >>> cols["user_cohort"], cols["event_timestamp"]
    ('policy.categorical_features', 'policy.timestamp')
    """
    need: dict[str, str] = {policy.timestamp: "policy.timestamp"}
    for f in policy.features:
        need.setdefault(f, "policy.features")
    for f in policy.categorical_features:
        need.setdefault(f, "policy.categorical_features")
    if policy.segments and any(m.segment or m.per_segment for m in policy.monitors):
        need.setdefault(policy.segments.column, "policy.segments.column")
    for m in policy.monitors:
        if isinstance(m, PredictionDriftMonitor | PerformanceMonitor | ConceptDriftMonitor):
            need.setdefault(policy.prediction, f"policy.prediction (monitor {m.name})")
        if isinstance(m, PerformanceMonitor | ConceptDriftMonitor):
            for col in m.slice_by:
                need.setdefault(col, f"monitors.{m.name}.slice_by")
        if isinstance(m, SequentialMonitor):
            need.setdefault(m.cohort_column, f"monitors.{m.name}.cohort_column")
            if m.outcome:
                need.setdefault(m.outcome, f"monitors.{m.name}.outcome")
    return need


def validate_inputs(policy: Policy, reference: pd.DataFrame | None, current: pd.DataFrame) -> list[str]:
    """Raise ``DataError`` for unusable inputs; return warnings for tolerable gaps.

    ``reference`` None (a registered profile stands in for it) checks the current window only.
    """
    warnings: list[str] = []
    frames = (("current", current),) if reference is None else (("reference", reference), ("current", current))
    for frame_name, df in frames:
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"{frame_name} data is a {type(df).__name__}, not a table", fix="pass a pandas DataFrame, a parquet or a CSV file")
        if len(df) == 0:
            raise DataError(f"{frame_name} data window is empty (0 rows)", fix="widen the window or check the data source's date filter")
        for col, field_name in required_columns(policy).items():
            if col not in df.columns:
                fix = _suggest(col, list(df.columns))
                if col == policy.prediction and not fix.startswith("did you mean"):
                    fix = f"score the data first: add the model's P({policy.label} = 1) as column {col!r} (the monitor pipeline scores with the registered champion)"
                raise DataError(f"{frame_name} data has no column {col!r} ({field_name})", fix=fix)
        _check_timestamp(policy, frame_name, df)
        for col in policy.features:
            if not ptypes.is_numeric_dtype(df[col]) or ptypes.is_bool_dtype(df[col]):
                raise DataError(
                    f"{frame_name} data column {col!r} is {df[col].dtype}, but policy.features needs numbers",
                    fix="convert it to numbers or move it to policy.categorical_features",
                )
        for col in (*policy.all_features, *_optional(policy, df)):
            if df[col].isna().all():
                raise DataError(f"{frame_name} data column {col!r} is entirely missing (all NaN)", fix="check the join or the feature pipeline that fills it")
        if policy.prediction in df.columns:
            _check_prediction(policy, frame_name, df)
        if policy.label not in df.columns:
            if any(m.type in LABEL_MONITORS for m in policy.monitors):
                warnings.append(f"{frame_name} data has no label column {policy.label!r}: label_drift and performance monitors report insufficient data")
        elif df[policy.label].notna().any():
            _check_binary(frame_name, df, policy.label, "policy.label")
    if reference is None:
        return warnings
    warnings += degenerate_reference(policy, reference, current)
    for col in policy.categorical_features:
        kinds = {ptypes.is_numeric_dtype(reference[col]), ptypes.is_numeric_dtype(current[col])}
        if len(kinds) > 1:
            raise DataError(
                f"column {col!r} is {reference[col].dtype} in reference data but {current[col].dtype} in current data",
                fix="write both windows with the same schema (cast the column to the same type)",
            )
    return warnings


def degenerate_reference(policy: Policy, reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """Warnings for a reference the monitors can use but that weakens them (never a refusal).

    One label class, constant feature columns, or far fewer rows than the current window.
    """
    classes = sorted(pd.unique(reference[policy.label].dropna())) if policy.label in reference.columns else []
    constant = [c for c in policy.all_features if c in reference.columns and _single_value(reference[c])]
    return _degenerate(classes, constant, len(reference), len(current))


def _single_value(series: pd.Series) -> bool:
    """Whether the non-missing values are all one value (min == max for numbers: no hashing of a million floats)."""
    if ptypes.is_numeric_dtype(series) and not ptypes.is_bool_dtype(series):
        return bool(series.min() == series.max())  # NaN skipped; all NaN gives NaN != NaN
    return series.nunique(dropna=True) == 1


def profile_warnings(policy: Policy, profile: ReferenceProfile, current: pd.DataFrame) -> list[str]:
    """:func:`degenerate_reference` for a registered profile standing in for the reference rows."""
    whole = profile.scope(None)
    assert whole is not None
    classes = sorted(int(k) for k in whole.categorical.get(policy.label, ({}, 0))[0])
    return _degenerate(classes, whole.constant_columns(policy.all_features), whole.rows, len(current))


def _degenerate(classes: list[Any], constant: list[str], n_reference: int, n_current: int) -> list[str]:
    out: list[str] = []
    if len(classes) == 1:
        out.append(f"reference labels hold one class ({classes[0]!r} only): label_drift sees any other class as drift and AUC/Gini have no "
                   "reference baseline; use a reference window with both outcomes")
    if constant:
        out.append(f"reference columns {constant} are constant: their drift tests flag any variation in the current window; "
                   "drop them from the monitor's features or use a reference where they vary")
    if n_reference * 10 < n_current:
        out.append(f"the reference has {n_reference} rows, far fewer than the current window's {n_current}: drift tests are "
                   "limited by the reference's size; use a longer reference window")
    return out


def _optional(policy: Policy, df: pd.DataFrame) -> list[str]:
    cols = [policy.prediction] if policy.prediction in df.columns else []
    if policy.segments and policy.segments.column in df.columns:
        cols.append(policy.segments.column)
    return cols


def _suggest(col: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(col, [str(c) for c in columns], n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}? rename the column or fix the policy"
    shown = ", ".join(map(str, columns[:12])) + (" ..." if len(columns) > 12 else "")
    return f"add the column; the data has: {shown}"


def _check_timestamp(policy: Policy, frame_name: str, df: pd.DataFrame) -> None:
    col = df[policy.timestamp]
    if ptypes.is_datetime64_any_dtype(col):
        return
    try:
        pd.to_datetime(col)
    except (ValueError, TypeError):
        raise DataError(
            f"{frame_name} data column {policy.timestamp!r} (policy.timestamp) is not a timestamp",
            fix="store ISO-8601 times or datetimes in it",
        ) from None


def _check_prediction(policy: Policy, frame_name: str, df: pd.DataFrame) -> None:
    col = df[policy.prediction]
    if not ptypes.is_numeric_dtype(col):
        raise DataError(f"{frame_name} data column {policy.prediction!r} (policy.prediction) is {col.dtype}, not a probability",
                        fix="store P(label = 1) as a float in [0, 1]")
    values = col.dropna()
    if len(values) and (values.min() < 0 or values.max() > 1):
        raise DataError(f"{frame_name} data column {policy.prediction!r} has values outside [0, 1] ({values.min():.3g}..{values.max():.3g})",
                        fix="store P(label = 1), not a score or a class label")


def _check_binary(frame_name: str, df: pd.DataFrame, col: str, field_name: str) -> None:
    values = set(pd.unique(df[col].dropna()))
    if not values <= {0, 1}:
        shown = sorted(map(str, values))[:5]
        raise DataError(f"{frame_name} data column {col!r} ({field_name}) must be 0/1, found {shown}",
                        fix="encode the label as 0/1 (NaN while not yet known)")

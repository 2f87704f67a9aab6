"""Input checks shared by the detectors: every bad input becomes a DataError naming the column and the fix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from components.errors import DataError


def require_rows(df: pd.DataFrame, role: str) -> None:
    """Raise DataError if ``df`` (the ``role`` window, e.g. "current") has no rows."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"the {role} data must be a pandas DataFrame, got {type(df).__name__}", fix="pass a DataFrame")
    if len(df) == 0:
        raise DataError(f"the {role} window is empty (0 rows)", fix=f"widen the {role} window or check the data source")


def require_column(df: pd.DataFrame, column: str, role: str) -> pd.Series:
    """The column, or DataError naming it and the columns that exist."""
    if column not in df.columns:
        known = ", ".join(map(str, list(df.columns)[:20]))
        raise DataError(f"column {column!r} is missing from the {role} data (has: {known})", fix=f"add {column!r} to the {role} data or remove it from the policy")
    return df[column]


def numeric_values(df: pd.DataFrame, column: str, role: str) -> tuple[np.ndarray, int]:
    """A numeric column as float64 without NaN, and how many NaN were dropped."""
    series = require_column(df, column, role)
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        raise DataError(
            f"column {column!r} in the {role} data has dtype {series.dtype}, expected numeric",
            fix=f"convert {column!r} to numbers or list it under categorical_features",
        )
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return finite_or_raise(values, column, role)


def finite_or_raise(values: np.ndarray, column: str, role: str) -> tuple[np.ndarray, int]:
    """Drop NaN from ``values``; DataError if nothing is left."""
    mask = np.isnan(values)
    n_nan = int(mask.sum())
    if n_nan == len(values):
        raise DataError(f"column {column!r} in the {role} data is all NaN ({n_nan} rows)", fix=f"fill {column!r} upstream or remove it from the policy")
    return (values[~mask] if n_nan else values), n_nan


def categorical_values(df: pd.DataFrame, column: str, role: str) -> tuple[np.ndarray, int]:
    """A categorical column as an array of strings without missing values, and the missing count."""
    series = require_column(df, column, role)
    missing = series.isna().to_numpy()
    n_nan = int(missing.sum())
    if n_nan == len(series):
        raise DataError(f"column {column!r} in the {role} data is all missing ({n_nan} rows)", fix=f"fill {column!r} upstream or remove it from the policy")
    kept = series[~missing] if n_nan else series
    return kept.astype(str).to_numpy(), n_nan


def as_1d(values: Any, name: str) -> np.ndarray:
    """A 1-D float array; DataError if the input is not 1-D numbers."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be numbers", fix=f"pass a 1-D numeric array for {name}") from None
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {arr.shape}", fix=f"flatten {name}")
    return arr


@contextlib.contextmanager
def numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (alibi-detect uses it) and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)

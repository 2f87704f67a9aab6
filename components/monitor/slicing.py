"""Where does the model fail? Rank slices by their share of the increase in errors.

For each value of each ``slice_by`` column, the slice's error rate now is compared with
its rate in the baseline (or with today's overall rate when there is no baseline). Its
excess errors are ``n_now * (rate_now - rate_baseline)``: the errors it would not have made
at its old rate. A slice's share is its excess over the column's total increase (the
slices of one column partition the rows, so shares per column sum to 1 when every slice
got worse). Numeric columns with many values (hour of day, amounts) are cut into
quantile buckets fixed on the baseline.

>>> rng = np.random.default_rng(0)
>>> n = 4000
>>> df = pd.DataFrame({"region": rng.choice(["north", "south", "east"], n), "hour": rng.integers(0, 24, n), "y": rng.integers(0, 2, n)})
>>> wrong = rng.random(n) < np.where(df.region == "south", 0.35, 0.1)
>>> df["pred"] = np.where(wrong, 1 - df.y, df.y)
>>> base = df.assign(pred=np.where(rng.random(n) < 0.1, 1 - df.y, df.y))
>>> top = rank_slices(df, "y", "pred", ["region", "hour"], baseline_df=base)[0]
>>> top["column"], top["slice"], round(top["share_of_increase"], 2)
('region', 'south', 0.91)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from components.errors import DataError
from components.monitor._checks import require_column, require_rows

MAX_LEVELS = 12  # a numeric column with more distinct values than this is bucketed


def _errors(df: pd.DataFrame, y_true: str, y_pred: str, role: str) -> tuple[pd.DataFrame, int]:
    require_rows(df, role)
    require_column(df, y_true, role)
    require_column(df, y_pred, role)
    known = df[y_true].notna() & df[y_pred].notna()
    kept = df.loc[known]
    if kept.empty:
        raise DataError(f"no {role} row has both {y_true!r} and {y_pred!r}", fix="wait for labels or widen the window")
    return kept.assign(_error=(kept[y_true] != kept[y_pred]).astype(float)), int((~known).sum())


def _slice_labels(values: pd.Series, edges: np.ndarray | None) -> pd.Series:
    if edges is None:
        return values.astype(str).where(values.notna(), "<missing>")
    codes = np.searchsorted(edges, values.to_numpy(dtype=float), side="right")
    lows = ["-inf", *(f"{e:g}" for e in edges)]
    highs = [*(f"{e:g}" for e in edges), "inf"]
    labels = np.array([f"[{lo}, {hi})" for lo, hi in zip(lows, highs, strict=True)], dtype=object)
    out = pd.Series(labels[codes], index=values.index)
    return out.where(values.notna(), "<missing>")


def _edges(values: pd.Series, bins: int) -> np.ndarray | None:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) or values.nunique() <= MAX_LEVELS:
        return None
    return np.unique(np.quantile(values.dropna().to_numpy(dtype=float), np.linspace(0, 1, bins + 1)[1:-1]))


def rank_slices(
    df: pd.DataFrame,
    y_true: str,
    y_pred_label: str,
    slice_by: list[str],
    baseline_df: pd.DataFrame | None = None,
    bins: int = 4,
    min_rows: int = 1,
) -> list[dict[str, Any]]:
    """Slices sorted by their share of the increase in errors (largest first).

    Each dict: column, slice, n, errors, error_rate, baseline_error_rate, n_baseline,
    excess_errors, share_of_increase. Rows without a label or prediction are skipped.
    """
    cur, _ = _errors(df, y_true, y_pred_label, "current")
    base = _errors(baseline_df, y_true, y_pred_label, "baseline")[0] if baseline_df is not None else None
    overall_base = float(base["_error"].mean()) if base is not None else float(cur["_error"].mean())
    out: list[dict[str, Any]] = []
    for col in slice_by:
        require_column(cur, col, "current")
        edges = _edges(base[col] if base is not None and col in base else cur[col], bins)
        now = cur.groupby(_slice_labels(cur[col], edges))["_error"].agg(["count", "sum"])
        if base is not None:
            require_column(base, col, "baseline")
            then = base.groupby(_slice_labels(base[col], edges))["_error"].agg(["count", "mean"])
        else:
            then = pd.DataFrame(columns=["count", "mean"])
        rows: list[dict[str, Any]] = []
        for label, (n, errs) in now.iterrows():
            if n < min_rows:
                continue
            rate = errs / n
            n_base = int(then["count"].get(label, 0)) if len(then) else 0
            base_rate = float(then["mean"][label]) if n_base else overall_base
            rows.append({"column": col, "slice": str(label), "n": int(n), "errors": int(errs), "error_rate": float(rate),
                         "n_baseline": n_base, "baseline_error_rate": base_rate, "excess_errors": float(n * (rate - base_rate))})
        increase = sum(max(float(r["excess_errors"]), 0.0) for r in rows)
        for r in rows:
            r["share_of_increase"] = r["excess_errors"] / increase if increase > 0 else 0.0
        out.extend(rows)
    return sorted(out, key=lambda r: (-r["share_of_increase"], -r["excess_errors"], r["column"], r["slice"]))

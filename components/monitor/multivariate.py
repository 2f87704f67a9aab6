"""Multivariate drift: one test over the joint distribution of several features.

Alibi-detect's MMDDrift (TensorFlow backend, permutation p-value) or a classifier
two-sample test (out-of-fold AUC of a model telling reference from current rows,
Mann-Whitney p-value), on standardised numeric and one-hot categorical columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from components.errors import ConfigError, DataError
from components.monitor._checks import categorical_values, numeric_values, numpy_seed, require_rows
from components.monitor._correction import check_settings
from components.monitor.results import TestResult


def _design_matrix(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], categorical: list[str]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Standardised numeric columns and one-hot categoricals (reference categories), complete rows only."""
    require_rows(reference, "reference")
    require_rows(current, "current")
    cols: list[tuple[np.ndarray, np.ndarray]] = []
    dropped = {}
    ref_ok = np.ones(len(reference), bool)
    cur_ok = np.ones(len(current), bool)
    for col in features:
        for df, role in ((reference, "reference"), (current, "current")):
            if col in categorical:
                categorical_values(df, col, role)
            else:
                numeric_values(df, col, role)
        ref_ok &= reference[col].notna().to_numpy()
        cur_ok &= current[col].notna().to_numpy()
    dropped = {"nan_reference": int((~ref_ok).sum()), "nan_current": int((~cur_ok).sum())}
    ref, cur = reference.loc[ref_ok], current.loc[cur_ok]
    if ref.empty or cur.empty:
        raise DataError(f"no complete rows in {features}", fix="fill missing values upstream")
    for col in features:
        if col in categorical:
            r, c = ref[col].astype(str).to_numpy(), cur[col].astype(str).to_numpy()
            for cat in np.unique(r):
                cols.append(((r == cat).astype(float), (c == cat).astype(float)))
        else:
            r, c = ref[col].to_numpy(np.float64), cur[col].to_numpy(np.float64)
            scale = r.std() or 1.0
            cols.append(((r - r.mean()) / scale, (c - r.mean()) / scale))
    return np.column_stack([a for a, _ in cols]), np.column_stack([b for _, b in cols]), dropped


def multivariate_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    method: str = "mmd",
    p_value: float = 0.05,
    categorical: list[str] | None = None,
    max_rows: int = 500,
    seed: int = 0,
) -> TestResult:
    """One test over the joint distribution of ``features``: alibi-detect's MMDDrift (TensorFlow
    backend, permutation p-value) or a classifier two-sample test (out-of-fold AUC of a model
    telling reference from current, Mann-Whitney p-value). Each side is subsampled to
    ``max_rows`` rows with ``seed`` to keep it fast.

    >>> rng = np.random.default_rng(4)
    >>> ref = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    >>> cur = pd.DataFrame(rng.normal(size=(300, 2)) + [0.6, 0.0], columns=["a", "b"])
    >>> r = multivariate_drift(ref, cur, ["a", "b"], method="classifier")
    >>> r.test, r.drift
    ('classifier', True)
    """
    check_settings(p_value, "bonferroni")
    if method not in ("mmd", "classifier"):
        raise ConfigError(f"unknown multivariate method {method!r}", fix="use 'mmd' or 'classifier'")
    x_ref, x_cur, dropped = _design_matrix(reference, current, features, categorical or [])
    rng = np.random.default_rng(seed)
    if len(x_ref) > max_rows:
        x_ref = x_ref[rng.choice(len(x_ref), max_rows, replace=False)]
    if len(x_cur) > max_rows:
        x_cur = x_cur[rng.choice(len(x_cur), max_rows, replace=False)]
    details: dict[str, Any] = {"features": features, "n_reference": len(x_ref), "n_current": len(x_cur), **dropped}
    if method == "mmd":
        stat, p, extra = _mmd(x_ref, x_cur, p_value, seed)
    else:
        stat, p, extra = _classifier_test(x_ref, x_cur, seed)
    details.update(extra)
    return TestResult(test=method, statistic=stat, p_value=p, threshold=p_value, drift=bool(p < p_value), details=details)


def _mmd(x_ref: np.ndarray, x_cur: np.ndarray, p_value: float, seed: int) -> tuple[float, float, dict[str, Any]]:
    import tensorflow as tf
    from alibi_detect.cd import MMDDrift

    tf.random.set_seed(seed)
    with numpy_seed(seed):
        det = MMDDrift(x_ref.astype(np.float32), backend="tensorflow", p_val=p_value, n_permutations=100)
        out = det.predict(x_cur.astype(np.float32))["data"]
    return float(out["distance"]), float(out["p_val"]), {"distance_threshold": float(out["distance_threshold"])}


def _classifier_test(x_ref: np.ndarray, x_cur: np.ndarray, seed: int) -> tuple[float, float, dict[str, Any]]:
    from scipy.stats import mannwhitneyu
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    x = np.vstack([x_ref, x_cur])
    y = np.r_[np.zeros(len(x_ref)), np.ones(len(x_cur))]
    model = HistGradientBoostingClassifier(max_iter=30, max_depth=3, random_state=seed)
    from threadpoolctl import threadpool_limits

    # One thread: OpenMP spinning on a shared 2-core machine made this 5x slower, not faster.
    with threadpool_limits(1):
        scores = cross_val_predict(model, x, y, cv=5, method="predict_proba")[:, 1]
    # Out-of-fold scores are exchangeable under no drift, so a rank test on them is valid.
    res = mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater")
    auc = float(res.statistic) / (len(x_ref) * len(x_cur))
    return auc, float(res.pvalue), {"auc": auc}

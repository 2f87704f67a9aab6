"""Feature, prediction and label drift: two-sample tests per column with a multiple-testing correction.

:func:`feature_drift` runs one registered test per column (``components.monitor.stattests``:
alibi-detect's KSDrift, CVMDrift, ChiSquareDrift, FETDrift), or one TabularDrift over the
mixed set, and corrects across features. The fast path for repeated windows lives in
``reference_summary`` and the joint tests in ``multivariate``; both are re-exported here.

>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"age": rng.normal(40, 10, 500), "plan": rng.choice(["a", "b"], 500)})
>>> cur = pd.DataFrame({"age": rng.normal(45, 10, 500), "plan": rng.choice(["a", "b"], 500)})
>>> [(r.feature, r.test, r.drift) for r in feature_drift(ref, cur, ["age"], ["plan"])]
[('age', 'ks', True), ('plan', 'chi2', False)]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from components.errors import ConfigError, DataError
from components.monitor._checks import as_1d, categorical_values, numeric_values, require_rows
from components.monitor._correction import Score, check_settings, corrected_results
from components.monitor.results import TestResult
from components.monitor.stattests import get_stattest


def _encode(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    categories = np.union1d(ref, cur)
    return np.searchsorted(categories, ref), np.searchsorted(categories, cur), categories


def _binary_codes(ref: np.ndarray, cur: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
    r, c, categories = _encode(ref, cur)
    if len(categories) > 2:
        raise DataError(
            f"column {column!r} has {len(categories)} categories; the 'fet' test needs a binary column",
            fix="use categorical_test: chi2 for this column",
        )
    return r, c


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    numeric_test: str = "ks",
    categorical_test: str = "chi2",
    correction: str = "bonferroni",
    p_value: float = 0.05,
    tabular: bool = False,
    segment: str | None = None,
) -> list[TestResult]:
    """One alibi-detect test per feature, corrected across all features (numeric and categorical).

    ``threshold`` in each result is the corrected per-feature threshold; ``details`` hold the
    adjusted p-value and the NaN counts dropped from each side.

    >>> rng = np.random.default_rng(1)
    >>> ref = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)})
    >>> cur = pd.DataFrame({"x": rng.normal(0.5, 1, 300), "y": rng.normal(size=300)})
    >>> [(r.feature, r.drift, r.threshold) for r in feature_drift(ref, cur, ["x", "y"], [])]
    [('x', True, 0.025), ('y', False, 0.025)]
    """
    check_settings(p_value, correction)
    num_test = get_stattest(numeric_test, "num", result="p_value")
    cat_test = get_stattest(categorical_test, "cat", result="p_value")
    require_rows(reference, "reference")
    require_rows(current, "current")
    if tabular:
        return _tabular_drift(reference, current, numeric, categorical, numeric_test, categorical_test, correction, p_value, segment)
    scores: list[Score] = []
    for col in numeric:
        ref, ref_nan = numeric_values(reference, col, "reference")
        cur, cur_nan = numeric_values(current, col, "current")
        stat, p = num_test(ref, cur)
        scores.append(Score(col, numeric_test, "numeric", stat, p, _counts(ref, cur, ref_nan, cur_nan)))
    for col in categorical:
        ref_s, ref_nan = categorical_values(reference, col, "reference")
        cur_s, cur_nan = categorical_values(current, col, "current")
        if categorical_test == "fet":
            r, c = _binary_codes(ref_s, cur_s, col)
        else:
            r, c, _ = _encode(ref_s, cur_s)
        stat, p = cat_test(r, c)
        scores.append(Score(col, categorical_test, "categorical", stat, p, _counts(ref_s, cur_s, ref_nan, cur_nan)))
    return corrected_results(scores, p_value, correction, segment)


def _counts(ref: np.ndarray, cur: np.ndarray, ref_nan: int, cur_nan: int) -> dict[str, int]:
    return {"n_reference": len(ref), "n_current": len(cur), "nan_reference": ref_nan, "nan_current": cur_nan}


def _tabular_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    numeric_test: str,
    categorical_test: str,
    correction: str,
    p_value: float,
    segment: str | None,
) -> list[TestResult]:
    """One TabularDrift (KS on numeric, chi-squared on categorical) over rows complete in every column."""
    if numeric_test != "ks" or categorical_test != "chi2":
        raise ConfigError("tabular: true runs alibi-detect's TabularDrift, which uses ks and chi2 only", fix="set numeric_test: ks and categorical_test: chi2, or tabular: false")
    from alibi_detect.cd import TabularDrift

    columns = [*numeric, *categorical]
    frames = []
    for df, role in ((reference, "reference"), (current, "current")):
        for col in numeric:
            numeric_values(df, col, role)  # dtype / missing / all-NaN checks
        for col in categorical:
            categorical_values(df, col, role)
        complete = df[columns].dropna()
        if complete.empty:
            raise DataError(f"no {role} row is complete in all of {columns}", fix="fill missing values or run tabular: false (per-column NaN dropping)")
        frames.append(complete)
    ref_df, cur_df = frames
    x_ref = np.empty((len(ref_df), len(columns)))
    x_cur = np.empty((len(cur_df), len(columns)))
    for j, col in enumerate(numeric):
        x_ref[:, j] = ref_df[col].to_numpy(np.float64)
        x_cur[:, j] = cur_df[col].to_numpy(np.float64)
    for j, col in enumerate(categorical, start=len(numeric)):
        x_ref[:, j], x_cur[:, j], _ = _encode(ref_df[col].astype(str).to_numpy(), cur_df[col].astype(str).to_numpy())
    det = TabularDrift(x_ref, p_val=p_value, categories_per_feature={j: None for j in range(len(numeric), len(columns))}, correction=correction)
    out = det.predict(x_cur, drift_type="feature", return_p_val=True, return_distance=True)["data"]
    scores = [
        Score(col, "ks" if j < len(numeric) else "chi2", "numeric" if j < len(numeric) else "categorical", float(out["distance"][j]), float(out["p_val"][j]),
               {"n_reference": len(ref_df), "n_current": len(cur_df), "nan_reference": len(reference) - len(ref_df), "nan_current": len(current) - len(cur_df)})
        for j, col in enumerate(columns)
    ]
    return corrected_results(scores, p_value, correction, segment, {"tabular": True})


def prediction_drift(ref_scores: Any, cur_scores: Any, test: str = "ks", p_value: float = 0.05, segment: str | None = None) -> TestResult:
    """Drift of the model's output scores (KS or CVM), NaN dropped and counted.

    >>> rng = np.random.default_rng(2)
    >>> r = prediction_drift(rng.beta(2, 5, 400), rng.beta(3, 4, 400), p_value=0.01)
    >>> r.feature, r.drift
    ('prediction', True)
    """
    get_stattest(test, "num", result="p_value")
    check_settings(p_value, "bonferroni")
    ref = pd.DataFrame({"prediction": as_1d(ref_scores, "ref_scores")})
    cur = pd.DataFrame({"prediction": as_1d(cur_scores, "cur_scores")})
    return feature_drift(ref, cur, ["prediction"], [], numeric_test=test, p_value=p_value, segment=segment)[0]


def label_drift(ref_labels: Any, cur_labels: Any, test: str = "chi2", p_value: float = 0.05, segment: str | None = None) -> TestResult:
    """Drift of the label distribution (chi-squared, or Fisher's exact test for binary labels).

    >>> r = label_drift([0] * 900 + [1] * 100, [0] * 800 + [1] * 200, p_value=0.01)
    >>> r.feature, r.drift
    ('label', True)
    """
    get_stattest(test, "cat", result="p_value")
    check_settings(p_value, "bonferroni")
    ref = pd.DataFrame({"label": pd.Series(np.asarray(ref_labels).ravel())})
    cur = pd.DataFrame({"label": pd.Series(np.asarray(cur_labels).ravel())})
    require_rows(cur, "current labels")
    return feature_drift(ref, cur, [], ["label"], categorical_test=test, p_value=p_value, segment=segment)[0]


from components.monitor.multivariate import multivariate_drift  # noqa: E402 - re-exported for callers of drift
from components.monitor.reference_summary import ReferenceSummary, ks_from_sorted  # noqa: E402

__all__ = [
    "ReferenceSummary",
    "feature_drift",
    "ks_from_sorted",
    "label_drift",
    "multivariate_drift",
    "prediction_drift",
]

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
from components.monitor.profile import ScopeProfile
from components.monitor.reference_summary import ReferenceSummary, ks_from_sorted
from components.monitor.results import TestResult
from components.monitor.stattests import get_stattest


def _encode(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    categories = np.union1d(ref, cur)
    return np.searchsorted(categories, ref), np.searchsorted(categories, cur), categories


def feature_drift(
    reference: pd.DataFrame | ScopeProfile,
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
    """One registered test per feature, corrected across all features (numeric and categorical).

    Runs on the :class:`ReferenceSummary` fast path with exact p-values (scipy's, as
    alibi-detect's detectors compute them, without importing alibi-detect or TensorFlow);
    ``tabular=True`` runs alibi-detect's TabularDrift instead. ``reference`` may be a
    registered profile's scope (:class:`~components.monitor.profile.ScopeProfile`): the
    same results without sorting the reference again. ``threshold`` in each result is the corrected per-feature threshold; ``details`` hold the
    adjusted p-value and the NaN counts dropped from each side.

    >>> rng = np.random.default_rng(1)
    >>> ref = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)})
    >>> cur = pd.DataFrame({"x": rng.normal(0.5, 1, 300), "y": rng.normal(size=300)})
    >>> [(r.feature, r.drift, r.threshold) for r in feature_drift(ref, cur, ["x", "y"], [])]
    [('x', True, 0.025), ('y', False, 0.025)]
    """
    check_settings(p_value, correction)
    get_stattest(numeric_test, "num", result="p_value")
    get_stattest(categorical_test, "cat", result="p_value")
    require_rows(current, "current")
    if isinstance(reference, ScopeProfile):
        if tabular:
            raise ConfigError("tabular: true needs the reference rows, not a profile", fix="pass the reference window (--reference) or set tabular: false")
        missing = [c for c in numeric if c not in reference.numeric] + [c for c in categorical if c not in reference.categorical]
        if missing:
            raise DataError(f"the reference profile has no column(s) {missing}", fix="pass the reference window (--reference) or rebuild the profile with the policy's columns")
        summary = ReferenceSummary.from_sorted({c: reference.numeric[c] for c in numeric}, {c: reference.categorical[c] for c in categorical},
                                               numeric_test, categorical_test, correction, p_value, exact=True)
        return summary.test(current, segment)
    require_rows(reference, "reference")
    if tabular:
        return _tabular_drift(reference, current, numeric, categorical, numeric_test, categorical_test, correction, p_value, segment)
    summary = ReferenceSummary.fit(reference, numeric, categorical, numeric_test, categorical_test, correction, p_value, exact=True)
    return summary.test(current, segment)


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


def prediction_drift(ref_scores: Any, cur_scores: Any, test: str = "ks", p_value: float = 0.05, segment: str | None = None,
                     column: str = "prediction") -> TestResult:
    """Drift of the model's output scores (KS or CVM), NaN dropped and counted.

    ``ref_scores`` may be a profile's scope (its ``column`` holds the sorted scores).

    >>> rng = np.random.default_rng(2)
    >>> r = prediction_drift(rng.beta(2, 5, 400), rng.beta(3, 4, 400), p_value=0.01)
    >>> r.feature, r.drift
    ('prediction', True)
    """
    ref = ref_scores.column(column, "prediction") if isinstance(ref_scores, ScopeProfile) else pd.DataFrame({"prediction": as_1d(ref_scores, "ref_scores")})
    cur = pd.DataFrame({"prediction": as_1d(cur_scores, "cur_scores")})
    return feature_drift(ref, cur, ["prediction"], [], numeric_test=test, p_value=p_value, segment=segment)[0]


def label_drift(ref_labels: Any, cur_labels: Any, test: str = "chi2", p_value: float = 0.05, segment: str | None = None,
                column: str = "label") -> TestResult:
    """Drift of the label distribution (chi-squared, or Fisher's exact test for binary labels).

    ``ref_labels`` may be a profile's scope (its ``column`` holds the labelled rows' counts).

    >>> r = label_drift([0] * 900 + [1] * 100, [0] * 800 + [1] * 200, p_value=0.01)
    >>> r.feature, r.drift
    ('label', True)
    """
    ref = ref_labels.column(column, "label") if isinstance(ref_labels, ScopeProfile) else pd.DataFrame({"label": pd.Series(np.asarray(ref_labels).ravel())})
    cur = pd.DataFrame({"label": pd.Series(np.asarray(cur_labels).ravel())})
    require_rows(cur, "current labels")
    return feature_drift(ref, cur, [], ["label"], categorical_test=test, p_value=p_value, segment=segment)[0]


from components.monitor.multivariate import multivariate_drift  # noqa: E402 - re-exported for callers of drift

__all__ = [
    "ReferenceSummary",
    "feature_drift",
    "ks_from_sorted",
    "label_drift",
    "multivariate_drift",
    "prediction_drift",
]

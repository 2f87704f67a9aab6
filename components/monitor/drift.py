"""Feature, prediction and label drift: two-sample tests per column with a multiple-testing correction.

Tests are registered by name with the column kinds they accept, so an unknown or
misplaced name fails when the policy is read (:func:`get_test`), not in the middle of a
run. :func:`feature_drift` runs alibi-detect's detectors (KSDrift, CVMDrift,
ChiSquareDrift, FETDrift, or one TabularDrift over the mixed set) and corrects across
features. :class:`ReferenceSummary` is the fast path for repeated monitoring: the
reference is sorted / counted once and each new window costs one sort of its own
columns, with the same KS / chi-squared verdicts as alibi-detect.

>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"age": rng.normal(40, 10, 500), "plan": rng.choice(["a", "b"], 500)})
>>> cur = pd.DataFrame({"age": rng.normal(45, 10, 500), "plan": rng.choice(["a", "b"], 500)})
>>> summary = ReferenceSummary.fit(ref, numeric=["age"], categorical=["plan"], p_value=0.05)
>>> [(r.feature, r.test, r.drift) for r in summary.test(cur)]
[('age', 'ks', True), ('plan', 'chi2', False)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from components.errors import ConfigError, DataError
from components.monitor._checks import (
    as_1d,
    categorical_values,
    numeric_values,
    numpy_seed,
    require_rows,
)
from components.monitor._correction import CORRECTIONS, adjusted_p_values, corrected_threshold
from components.monitor.results import TestResult


@dataclass(frozen=True)
class StatTest:
    """A registered two-sample test: its name, the column kinds it accepts and its alibi-detect detector."""

    name: str
    kinds: tuple[str, ...]  # "numeric", "categorical", "binary" (a categorical with at most two values)
    detector: str
    statistic: str


STAT_TESTS: dict[str, StatTest] = {
    "ks": StatTest("ks", ("numeric",), "KSDrift", "Kolmogorov-Smirnov distance"),
    "cvm": StatTest("cvm", ("numeric",), "CVMDrift", "Cramer-von Mises statistic"),
    "chi2": StatTest("chi2", ("categorical", "binary"), "ChiSquareDrift", "chi-squared statistic"),
    "fet": StatTest("fet", ("binary",), "FETDrift", "odds ratio"),
}


def get_test(name: str, kind: str | None = None) -> StatTest:
    """Look a test up by name, checking it accepts columns of ``kind``.

    >>> get_test("ks", "numeric").detector
    'KSDrift'
    >>> get_test("anderson")
    Traceback (most recent call last):
    components.errors.ConfigError: unknown drift test 'anderson' (fix: use one of ks, cvm, chi2, fet)
    """
    test = STAT_TESTS.get(name)
    if test is None:
        raise ConfigError(f"unknown drift test {name!r}", fix=f"use one of {', '.join(STAT_TESTS)}")
    if kind is not None and kind not in test.kinds and not (kind == "categorical" and "binary" in test.kinds):
        usable = [t.name for t in STAT_TESTS.values() if kind in t.kinds]
        raise ConfigError(f"drift test {name!r} does not accept {kind} columns", fix=f"use one of {', '.join(usable)} for {kind} columns")
    return test


def registered_tests(kind: str) -> list[str]:
    """Names of the registered tests that accept ``kind`` columns.

    >>> registered_tests("categorical")
    ['chi2']
    """
    return [t.name for t in STAT_TESTS.values() if kind in t.kinds]


def _check_settings(p_value: float, correction: str) -> None:
    if not 0 < p_value < 1:
        raise ConfigError(f"p_value must be in (0, 1), got {p_value}", fix="use e.g. p_value: 0.05")
    if correction not in CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r}", fix=f"use one of {', '.join(CORRECTIONS)}")


@dataclass
class _Score:
    feature: str
    test: str
    kind: str
    statistic: float
    p_value: float
    counts: dict[str, int] = field(default_factory=dict)


def _encode(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    categories = np.union1d(ref, cur)
    return np.searchsorted(categories, ref), np.searchsorted(categories, cur), categories


def _alibi_univariate(test: str, x_ref: np.ndarray, x: np.ndarray, column: str) -> tuple[float, float]:
    """One alibi-detect detector on one column: (statistic, p-value)."""
    from alibi_detect.cd import ChiSquareDrift, CVMDrift, FETDrift, KSDrift

    if test == "ks":
        det: Any = KSDrift(x_ref[:, None], p_val=0.05)
    elif test == "cvm":
        det = CVMDrift(x_ref[:, None], p_val=0.05)
    elif test == "chi2":
        det = ChiSquareDrift(x_ref[:, None], p_val=0.05)
    else:
        det = FETDrift(x_ref[:, None], p_val=0.05, alternative="two-sided")
    out = det.predict(x[:, None], drift_type="feature", return_p_val=True, return_distance=True)["data"]
    return float(np.asarray(out["distance"]).ravel()[0]), float(np.asarray(out["p_val"]).ravel()[0])


def _binary_codes(ref: np.ndarray, cur: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
    r, c, categories = _encode(ref, cur)
    if len(categories) > 2:
        raise DataError(
            f"column {column!r} has {len(categories)} categories; the 'fet' test needs a binary column",
            fix="use categorical_test: chi2 for this column",
        )
    return r, c


def _results(scores: list[_Score], p_value: float, correction: str, segment: str | None, extra: dict[str, Any] | None = None) -> list[TestResult]:
    p = np.array([s.p_value for s in scores], dtype=float)
    threshold = corrected_threshold(p, p_value, correction)
    adjusted = adjusted_p_values(p, correction)
    return [
        TestResult(
            test=s.test,
            statistic=s.statistic,
            p_value=s.p_value,
            threshold=threshold,
            drift=bool(s.p_value < threshold),
            feature=s.feature,
            segment=segment,
            details={"kind": s.kind, "correction": correction, "alpha": p_value, "p_value_adjusted": float(adj), "n_features": len(scores), **s.counts, **(extra or {})},
        )
        for s, adj in zip(scores, adjusted, strict=True)
    ]


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
    _check_settings(p_value, correction)
    if numeric:
        get_test(numeric_test, "numeric")
    if categorical:
        get_test(categorical_test, "categorical")
    require_rows(reference, "reference")
    require_rows(current, "current")
    if tabular:
        return _tabular_drift(reference, current, numeric, categorical, numeric_test, categorical_test, correction, p_value, segment)
    scores: list[_Score] = []
    for col in numeric:
        ref, ref_nan = numeric_values(reference, col, "reference")
        cur, cur_nan = numeric_values(current, col, "current")
        stat, p = _alibi_univariate(numeric_test, ref, cur, col)
        scores.append(_Score(col, numeric_test, "numeric", stat, p, _counts(ref, cur, ref_nan, cur_nan)))
    for col in categorical:
        ref_s, ref_nan = categorical_values(reference, col, "reference")
        cur_s, cur_nan = categorical_values(current, col, "current")
        if categorical_test == "fet":
            r, c = _binary_codes(ref_s, cur_s, col)
        else:
            r, c, _ = _encode(ref_s, cur_s)
        stat, p = _alibi_univariate(categorical_test, r, c, col)
        scores.append(_Score(col, categorical_test, "categorical", stat, p, _counts(ref_s, cur_s, ref_nan, cur_nan)))
    return _results(scores, p_value, correction, segment)


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
        _Score(col, "ks" if j < len(numeric) else "chi2", "numeric" if j < len(numeric) else "categorical", float(out["distance"][j]), float(out["p_val"][j]),
               {"n_reference": len(ref_df), "n_current": len(cur_df), "nan_reference": len(reference) - len(ref_df), "nan_current": len(current) - len(cur_df)})
        for j, col in enumerate(columns)
    ]
    return _results(scores, p_value, correction, segment, {"tabular": True})


def prediction_drift(ref_scores: Any, cur_scores: Any, test: str = "ks", p_value: float = 0.05, segment: str | None = None) -> TestResult:
    """Drift of the model's output scores (KS or CVM), NaN dropped and counted.

    >>> rng = np.random.default_rng(2)
    >>> r = prediction_drift(rng.beta(2, 5, 400), rng.beta(3, 4, 400), p_value=0.01)
    >>> r.feature, r.drift
    ('prediction', True)
    """
    get_test(test, "numeric")
    _check_settings(p_value, "bonferroni")
    ref = pd.DataFrame({"prediction": as_1d(ref_scores, "ref_scores")})
    cur = pd.DataFrame({"prediction": as_1d(cur_scores, "cur_scores")})
    return feature_drift(ref, cur, ["prediction"], [], numeric_test=test, p_value=p_value, segment=segment)[0]


def label_drift(ref_labels: Any, cur_labels: Any, test: str = "chi2", p_value: float = 0.05, segment: str | None = None) -> TestResult:
    """Drift of the label distribution (chi-squared, or Fisher's exact test for binary labels).

    >>> r = label_drift([0] * 900 + [1] * 100, [0] * 800 + [1] * 200, p_value=0.01)
    >>> r.feature, r.drift
    ('label', True)
    """
    get_test(test, "categorical")
    _check_settings(p_value, "bonferroni")
    ref = pd.DataFrame({"label": pd.Series(np.asarray(ref_labels).ravel())})
    cur = pd.DataFrame({"label": pd.Series(np.asarray(cur_labels).ravel())})
    require_rows(cur, "current labels")
    return feature_drift(ref, cur, [], ["label"], categorical_test=test, p_value=p_value, segment=segment)[0]


# --- fast path: summarise the reference once, test many windows --------------------------------


def _tie_ranks(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted ``v``: (# values < v[i], # values <= v[i]) for each i, in O(n)."""
    n = len(sorted_values)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new_group[1:])
    if new_group.all():  # no ties: the common case for continuous features
        left = np.arange(n, dtype=np.int64)
        return left, left + 1
    starts = np.flatnonzero(new_group)
    sizes = np.diff(np.r_[starts, n])
    return np.repeat(starts, sizes), np.repeat(starts + sizes, sizes)


def ks_from_sorted(ref_sorted: np.ndarray, ref_left: np.ndarray, cur: np.ndarray, band: tuple[float, float] | None = None) -> tuple[float, float]:
    """Two-sided two-sample KS (scipy's ``mode='asymp'``, as alibi-detect uses) against a pre-sorted reference.

    ``ref_left[i]`` is the number of reference values below ``ref_sorted[i]`` (ties share it).
    One sort of ``cur`` and one binary search of it into the reference: between two current
    values the reference CDF minus the current CDF peaks at the last reference value before
    the next current value, so both the sup and the inf of F_ref - F_cur are read at the
    current points (exact integer arithmetic, one division at the end).

    The p-value is scipy's exact ``kstwo.sf(d, round(n m / (n + m)))``. Given ``band`` (the
    lowest and highest threshold the correction can set), a p-value more than 10x outside it
    comes from the Kolmogorov limit ``kstwobign`` instead (within ~1% at these sizes): the
    same verdict, and up to 1000x cheaper for large drifts.

    >>> from scipy.stats import ks_2samp
    >>> rng = np.random.default_rng(3)
    >>> ref, cur = np.sort(rng.normal(size=200)), rng.normal(0.3, 1, 150)
    >>> d, p = ks_from_sorted(ref, _tie_ranks(ref)[0], cur)
    >>> bool(np.isclose(p, ks_2samp(ref, cur, method="asymp").pvalue))
    True
    """
    from scipy.stats import distributions

    c = np.sort(cur)
    n, m = len(ref_sorted), len(c)
    at_or_below = np.searchsorted(ref_sorted, c, side="right")  # reference values <= c_j
    prev = at_or_below - 1
    np.maximum(prev, 0, out=prev)
    tied = ref_sorted[prev] == c
    tied &= at_or_below > 0
    below = np.where(tied, ref_left[prev], at_or_below) if tied.any() else at_or_below  # reference values < c_j
    cur_below, cur_at_or_below = _tie_ranks(c)
    # n*m*(F_ref - F_cur) at each current value and at the last reference value before it
    at_points = at_or_below * m - cur_at_or_below * n
    before_points = below * m - cur_below * n
    scale = float(n) * float(m)
    max_s = max(int(at_points.max()), int(before_points.max())) / scale
    min_s = float(np.clip(-int(at_points.min()) / scale, 0, 1))
    d = min_s if min_s > max_s else max_s
    big, small = sorted([float(n), float(m)], reverse=True)
    en = np.round(big * small / (big + small))
    if band is not None:
        approx = float(distributions.kstwobign.sf(d * np.sqrt(en)))
        if approx < band[0] / 10 or approx > band[1] * 10:
            return d, approx
    return d, float(np.clip(distributions.kstwo.sf(d, en), 0, 1))


def _chi2_from_counts(ref_counts: dict[str, int], cur_values: np.ndarray) -> tuple[float, float, int]:
    from scipy.stats import chi2_contingency

    cats, cur_n = np.unique(cur_values, return_counts=True)
    cur_counts = dict(zip(cats.tolist(), cur_n.tolist(), strict=True))
    keys = sorted(set(ref_counts) | set(cur_counts))
    table = np.array([[ref_counts.get(k, 0) for k in keys], [cur_counts.get(k, 0) for k in keys]])
    if len(keys) < 2:
        return 0.0, 1.0, len(keys)
    stat, p, _, _ = chi2_contingency(table)
    return float(stat), float(p), len(keys)


def _fet_from_counts(ref_counts: dict[str, int], cur_values: np.ndarray, column: str) -> tuple[float, float]:
    from scipy.stats import fisher_exact

    cats, cur_n = np.unique(cur_values, return_counts=True)
    cur_counts = dict(zip(cats.tolist(), cur_n.tolist(), strict=True))
    keys = sorted(set(ref_counts) | set(cur_counts))
    if len(keys) > 2:
        raise DataError(f"column {column!r} has {len(keys)} categories; the 'fet' test needs a binary column", fix="use categorical_test: chi2 for this column")
    one = keys[-1]
    n_ref, n_cur = sum(ref_counts.values()), int(cur_n.sum())
    a, b = cur_counts.get(one, 0), ref_counts.get(one, 0)
    res = fisher_exact(np.array([[a, b], [n_cur - a, n_ref - b]]), alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


@dataclass
class ReferenceSummary:
    """A reference window summarised once (sorted numeric columns, category counts) and reused per window.

    Build it with :meth:`fit`; :meth:`test` gives the same verdicts as :func:`feature_drift`
    with ``ks`` / ``chi2`` / ``fet`` but costs one sort of the current columns.
    """

    numeric: dict[str, tuple[np.ndarray, np.ndarray, int]]
    categorical: dict[str, tuple[dict[str, int], int]]
    numeric_test: str = "ks"
    categorical_test: str = "chi2"
    correction: str = "bonferroni"
    p_value: float = 0.05

    @classmethod
    def fit(
        cls,
        reference: pd.DataFrame,
        numeric: list[str],
        categorical: list[str],
        numeric_test: str = "ks",
        categorical_test: str = "chi2",
        correction: str = "bonferroni",
        p_value: float = 0.05,
    ) -> ReferenceSummary:
        """Sort each numeric reference column and count each categorical one."""
        _check_settings(p_value, correction)
        if numeric and get_test(numeric_test, "numeric").name != "ks":
            raise ConfigError(f"ReferenceSummary supports numeric_test 'ks', not {numeric_test!r}", fix="use feature_drift() for cvm")
        if categorical:
            get_test(categorical_test, "categorical")
        require_rows(reference, "reference")
        nums = {}
        for col in numeric:
            values, n_nan = numeric_values(reference, col, "reference")
            s = np.sort(values)
            nums[col] = (s, _tie_ranks(s)[0], n_nan)
        cats = {}
        for col in categorical:
            values, n_nan = categorical_values(reference, col, "reference")
            keys, counts = np.unique(values, return_counts=True)
            cats[col] = (dict(zip(keys.tolist(), counts.tolist(), strict=True)), n_nan)
        return cls(nums, cats, numeric_test, categorical_test, correction, p_value)

    def _threshold_band(self) -> tuple[float, float]:
        """The lowest and highest per-feature threshold the correction can set."""
        return self.p_value / max(1, len(self.numeric) + len(self.categorical)), self.p_value

    def test(self, current: pd.DataFrame, segment: str | None = None) -> list[TestResult]:
        """Test one current window against the summarised reference, corrected across features."""
        require_rows(current, "current")
        scores: list[_Score] = []
        for col, (ref_sorted, ref_left, ref_nan) in self.numeric.items():
            cur, cur_nan = numeric_values(current, col, "current")
            d, p = ks_from_sorted(ref_sorted, ref_left, cur, band=self._threshold_band())
            scores.append(_Score(col, "ks", "numeric", d, p, {"n_reference": len(ref_sorted), "n_current": len(cur), "nan_reference": ref_nan, "nan_current": cur_nan}))
        for col, (ref_counts, ref_nan) in self.categorical.items():
            cur_s, cur_nan = categorical_values(current, col, "current")
            if self.categorical_test == "fet":
                stat, p = _fet_from_counts(ref_counts, cur_s, col)
            else:
                stat, p, _ = _chi2_from_counts(ref_counts, cur_s)
            counts = {"n_reference": sum(ref_counts.values()), "n_current": len(cur_s), "nan_reference": ref_nan, "nan_current": cur_nan}
            scores.append(_Score(col, self.categorical_test, "categorical", stat, p, counts))
        return _results(scores, self.p_value, self.correction, segment)


# --- multivariate ------------------------------------------------------------------------------


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
    _check_settings(p_value, "bonferroni")
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


__all__ = [
    "STAT_TESTS",
    "ReferenceSummary",
    "StatTest",
    "feature_drift",
    "get_test",
    "ks_from_sorted",
    "label_drift",
    "multivariate_drift",
    "prediction_drift",
    "registered_tests",
]

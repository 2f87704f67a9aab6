"""Feature, prediction, label and multivariate drift: detection, no false alarm, input errors, fast path == alibi-detect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.errors import ConfigError, DataError
from components.monitor.drift import feature_drift, label_drift, prediction_drift
from components.monitor.multivariate import multivariate_drift
from components.monitor.reference_summary import ReferenceSummary

pytestmark = pytest.mark.unit

NUMERIC = ["a", "b", "c"]
CATEGORICAL = ["plan", "flag"]


def frame(rng: np.random.Generator, n: int, shift: float = 0.0, plan_p: tuple[float, float, float] = (0.5, 0.3, 0.2)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": rng.normal(shift, 1, n),
            "b": rng.exponential(1.0, n),
            "c": rng.integers(0, 5, n).astype(float),  # ties
            "plan": rng.choice(["basic", "plus", "pro"], n, p=list(plan_p)),
            "flag": rng.choice(["no", "yes"], n, p=[0.8, 0.2]),
        }
    )


def by_feature(results):
    return {r.feature: r for r in results}


def test_feature_drift_rejects_a_test_for_the_wrong_kind() -> None:
    with pytest.raises(ConfigError, match="does not accept numeric"):
        feature_drift(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [1.0]}), ["a"], [], numeric_test="chi2")
    with pytest.raises(ConfigError, match="gives a distance, not a p-value"):
        feature_drift(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [1.0]}), ["a"], [], numeric_test="psi")


@pytest.mark.parametrize("numeric_test", ["ks", "cvm"])
def test_detects_only_the_shifted_columns(numeric_test: str) -> None:
    rng = np.random.default_rng(0)
    ref = frame(rng, 800)
    cur = frame(rng, 800, shift=0.3, plan_p=(0.3, 0.3, 0.4))
    res = by_feature(feature_drift(ref, cur, NUMERIC, CATEGORICAL, numeric_test=numeric_test, p_value=0.05))
    assert {f for f, r in res.items() if r.drift} == {"a", "plan"}
    assert res["a"].test == numeric_test and res["plan"].test == "chi2"
    assert all(r.threshold == pytest.approx(0.05 / 5) for r in res.values())  # Bonferroni over 5 features
    assert res["a"].details["p_value_adjusted"] == pytest.approx(min(1.0, res["a"].p_value * 5))


def test_no_drift_on_same_distribution() -> None:
    rng = np.random.default_rng(1)
    res = feature_drift(frame(rng, 600), frame(rng, 600), NUMERIC, CATEGORICAL, correction="fdr", p_value=0.05)
    assert not any(r.drift for r in res)
    assert all(r.p_value > r.threshold for r in res)


def test_fdr_threshold_is_the_largest_passing_bh_step() -> None:
    rng = np.random.default_rng(2)
    ref = frame(rng, 1000)
    cur = frame(rng, 1000, shift=0.25, plan_p=(0.4, 0.3, 0.3))
    res = feature_drift(ref, cur, NUMERIC, CATEGORICAL, correction="fdr", p_value=0.05)
    p = np.sort([r.p_value for r in res])
    k = max(i + 1 for i in range(5) if p[i] < 0.05 * (i + 1) / 5)
    assert res[0].threshold == pytest.approx(0.05 * k / 5)
    assert sum(r.drift for r in res) == k


def test_nan_dropped_and_counted() -> None:
    rng = np.random.default_rng(3)
    ref, cur = frame(rng, 300), frame(rng, 300)
    cur.loc[:9, "a"] = np.nan
    cur.loc[:4, "plan"] = None
    res = by_feature(feature_drift(ref, cur, ["a"], ["plan"]))
    assert res["a"].details["nan_current"] == 10 and res["a"].details["n_current"] == 290
    assert res["plan"].details["nan_current"] == 5


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda ref, cur: (ref, cur.drop(columns="a")), "column 'a' is missing from the current data"),
        (lambda ref, cur: (ref.assign(a=np.nan), cur), "column 'a' in the reference data is all NaN"),
        (lambda ref, cur: (ref, cur.iloc[:0]), "current window is empty"),
        (lambda ref, cur: (ref, cur.assign(a="x")), "column 'a' in the current data has dtype object, expected numeric"),
    ],
)
def test_bad_input_raises_data_error_naming_the_column(mutate, match: str) -> None:
    rng = np.random.default_rng(4)
    ref, cur = mutate(frame(rng, 50), frame(rng, 50))
    with pytest.raises(DataError, match=match) as err:
        feature_drift(ref, cur, ["a"], ["plan"])
    assert err.value.fix


def test_fet_needs_binary_columns() -> None:
    rng = np.random.default_rng(5)
    ref, cur = frame(rng, 200), frame(rng, 200)
    res = feature_drift(ref, cur, [], ["flag"], categorical_test="fet")
    assert res[0].test == "fet" and not res[0].drift
    with pytest.raises(DataError, match="'plan' has 3 categories"):
        feature_drift(ref, cur, [], ["plan"], categorical_test="fet")


def test_tabular_matches_per_column_tests() -> None:
    rng = np.random.default_rng(6)
    ref, cur = frame(rng, 500), frame(rng, 500, shift=0.5)
    per_col = by_feature(feature_drift(ref, cur, NUMERIC, CATEGORICAL))
    tab = by_feature(feature_drift(ref, cur, NUMERIC, CATEGORICAL, tabular=True))
    for f in NUMERIC + CATEGORICAL:
        assert tab[f].p_value == pytest.approx(per_col[f].p_value, rel=1e-4, abs=1e-12)
        assert tab[f].drift == per_col[f].drift
    assert tab["a"].drift and tab["a"].details["tabular"]
    with pytest.raises(ConfigError, match="TabularDrift"):
        feature_drift(ref, cur, NUMERIC, CATEGORICAL, numeric_test="cvm", tabular=True)


def _alibi_feature_scores(test: str, ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    from alibi_detect.cd import ChiSquareDrift, CVMDrift, FETDrift, KSDrift

    extra = {"alternative": "two-sided"} if test == "fet" else {}  # as the registry's fet
    det = {"ks": KSDrift, "cvm": CVMDrift, "chi2": ChiSquareDrift, "fet": FETDrift}[test](ref[:, None], p_val=0.05, **extra)
    out = det.predict(cur[:, None], drift_type="feature", return_p_val=True, return_distance=True)["data"]
    return float(out["distance"][0]), float(out["p_val"][0])


def _codes(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    cats = np.union1d(ref.astype(str), cur.astype(str))
    return np.searchsorted(cats, ref.astype(str)).astype(float), np.searchsorted(cats, cur.astype(str)).astype(float)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("numeric_test", "categorical_test"), [("ks", "chi2"), ("ks", "fet"), ("cvm", "chi2")])
def test_fast_path_p_values_equal_scipy_and_alibi_detect(seed: int, numeric_test: str, categorical_test: str) -> None:
    """feature_drift (the ReferenceSummary fast path, what 'driftloop monitor' runs) gives
    scipy's p-values to 1e-9, and alibi-detect's to its float32 precision."""
    from scipy.stats import chi2_contingency, cramervonmises_2samp, fisher_exact, ks_2samp

    rng = np.random.default_rng(10 + seed)
    ref = frame(rng, 700)
    cur = frame(rng, 400 + 100 * seed, shift=0.1 * seed, plan_p=(0.5 - 0.05 * seed, 0.3, 0.2 + 0.05 * seed))
    cats = ["flag"] if categorical_test == "fet" else CATEGORICAL
    fast = by_feature(feature_drift(ref, cur, NUMERIC, cats, numeric_test=numeric_test, categorical_test=categorical_test, correction="fdr"))
    for f in NUMERIC:
        r, c = ref[f].to_numpy(float), cur[f].to_numpy(float)
        want = ks_2samp(r, c, method="asymp") if numeric_test == "ks" else cramervonmises_2samp(r, c, method="auto")
        assert fast[f].p_value == pytest.approx(want.pvalue, rel=1e-9, abs=1e-12)
        assert fast[f].statistic == pytest.approx(want.statistic, rel=1e-9)
        _, alibi_p = _alibi_feature_scores(numeric_test, r, c)
        assert fast[f].p_value == pytest.approx(alibi_p, rel=1e-6, abs=1e-30)
    for f in cats:
        r, c = _codes(ref[f], cur[f])
        table = np.array([[np.sum(r == k) for k in (0, 1, 2)], [np.sum(c == k) for k in (0, 1, 2)]])
        table = table[:, table.sum(axis=0) > 0]
        if categorical_test == "chi2":
            want_p = chi2_contingency(table)[1]
        else:
            want_p = fisher_exact([[table[1, 1], table[0, 1]], [table[1, 0], table[0, 0]]], alternative="two-sided").pvalue
        assert fast[f].p_value == pytest.approx(want_p, rel=1e-9, abs=1e-12)
        assert fast[f].p_value == pytest.approx(_alibi_feature_scores(categorical_test, r, c)[1], rel=1e-6, abs=1e-30)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("categorical_test", ["chi2", "fet"])
def test_reusable_summary_with_the_kolmogorov_shortcut_keeps_the_verdicts(seed: int, categorical_test: str) -> None:
    rng = np.random.default_rng(10 + seed)
    ref = frame(rng, 700)
    cur = frame(rng, 400 + 100 * seed, shift=0.1 * seed, plan_p=(0.5 - 0.05 * seed, 0.3, 0.2 + 0.05 * seed))
    cats = ["flag"] if categorical_test == "fet" else CATEGORICAL
    exact = feature_drift(ref, cur, NUMERIC, cats, categorical_test=categorical_test, correction="fdr", p_value=0.05)
    summary = ReferenceSummary.fit(ref, NUMERIC, cats, categorical_test=categorical_test, correction="fdr", p_value=0.05)
    fast = summary.test(cur)
    for a, b in zip(exact, fast, strict=True):
        assert (a.feature, a.test, a.drift) == (b.feature, b.test, b.drift)
        if 0.05 / 5 / 10 < a.p_value < 0.5:  # near any threshold the correction can set: the exact p-value
            assert b.p_value == pytest.approx(a.p_value, rel=1e-9, abs=1e-12)
        else:  # far from it the fast path may use the Kolmogorov limit (same verdict)
            assert b.p_value == pytest.approx(a.p_value, rel=0.05, abs=1e-6)
        assert b.statistic == pytest.approx(a.statistic, rel=1e-9)
        assert b.threshold == pytest.approx(a.threshold)
    again = summary.test(cur)  # the summary is reusable and unchanged by a test
    assert [r.p_value for r in again] == [r.p_value for r in fast]


def test_reference_summary_rejects_a_distance_or_categorical_test_for_numeric_columns() -> None:
    with pytest.raises(ConfigError, match="gives a distance, not a p-value"):
        ReferenceSummary.fit(pd.DataFrame({"a": [1.0, 2.0]}), ["a"], [], numeric_test="psi")
    with pytest.raises(ConfigError, match="does not accept numeric"):
        ReferenceSummary.fit(pd.DataFrame({"a": [1.0, 2.0]}), ["a"], [], numeric_test="chi2")


def test_prediction_and_label_drift() -> None:
    rng = np.random.default_rng(7)
    ref_scores = rng.beta(2, 5, 1000)
    assert prediction_drift(ref_scores, rng.beta(2.6, 5, 1000), p_value=0.01).drift
    assert not prediction_drift(ref_scores, rng.beta(2, 5, 1000), p_value=0.01).drift
    ref_labels = (rng.random(2000) < 0.2).astype(int)
    assert label_drift(ref_labels, (rng.random(2000) < 0.26).astype(int), p_value=0.01).drift
    assert not label_drift(ref_labels, (rng.random(2000) < 0.2).astype(int), p_value=0.01).drift
    fet = label_drift(ref_labels, (rng.random(2000) < 0.26).astype(int), test="fet", p_value=0.01)
    assert fet.test == "fet" and fet.drift
    with pytest.raises(DataError, match="current labels"):
        label_drift(ref_labels, [])


def test_multivariate_classifier_sees_a_joint_shift_the_marginals_miss() -> None:
    rng = np.random.default_rng(8)
    n = 600
    x = rng.normal(size=n)
    ref = pd.DataFrame({"u": x, "v": x + rng.normal(0, 0.3, n)})  # correlated
    y = rng.normal(size=n)
    cur = pd.DataFrame({"u": y, "v": -y + rng.normal(0, 0.3, n)})  # same marginals, anti-correlated
    marginal = feature_drift(ref, cur, ["u", "v"], [], p_value=0.01)
    assert not any(r.drift for r in marginal)
    joint = multivariate_drift(ref, cur, ["u", "v"], method="classifier", p_value=0.01)
    assert joint.drift and joint.details["auc"] > 0.8
    same = pd.DataFrame({"u": (z := rng.normal(size=n)), "v": z + rng.normal(0, 0.3, n)})
    assert not multivariate_drift(ref, same, ["u", "v"], method="classifier", p_value=0.01).drift


def test_multivariate_mmd_tensorflow() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    shifted = pd.DataFrame(rng.normal(size=(300, 3)) + [0.5, 0, 0], columns=["a", "b", "c"])
    same = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    hit = multivariate_drift(ref, shifted, ["a", "b", "c"], method="mmd", max_rows=200)
    miss = multivariate_drift(ref, same, ["a", "b", "c"], method="mmd", max_rows=200)
    assert hit.drift and hit.test == "mmd" and hit.p_value < 0.05
    assert not miss.drift
    assert hit.details["n_reference"] == 200


def test_ks_fast_path_equals_scipy_with_ties_and_unequal_sizes() -> None:
    from scipy.stats import ks_2samp

    from components.monitor.reference_summary import _tie_ranks, ks_from_sorted

    rng = np.random.default_rng(11)
    for trial in range(150):
        n, m = rng.integers(5, 300, size=2)
        if trial % 3 == 0:  # heavy ties, sometimes shifted
            ref, cur = rng.integers(0, 8, n).astype(float), rng.integers(0, 8, m).astype(float) + trial % 2
        else:
            ref, cur = rng.normal(size=n), rng.normal(rng.normal() * 0.3, 1, m)
        ref_sorted = np.sort(ref)
        d, p = ks_from_sorted(ref_sorted, _tie_ranks(ref_sorted)[0], cur)
        expected = ks_2samp(ref, cur, method="asymp")
        assert d == pytest.approx(expected.statistic, abs=1e-12)
        assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)


def test_ks_p_values_below_1e_50_come_from_the_kolmogorov_limit_with_the_same_verdict() -> None:
    from scipy.stats import distributions, ks_2samp

    from components.monitor.reference_summary import TINY_P, ks_from_sorted

    rng = np.random.default_rng(12)
    ref, cur = np.sort(rng.normal(size=20_000)), rng.normal(0.3, 1, 20_000)
    d, p = ks_from_sorted(ref, None, cur)
    exact = ks_2samp(ref, cur, method="asymp")
    assert d == pytest.approx(exact.statistic, abs=1e-12)
    assert p == float(distributions.kstwobign.sf(d * np.sqrt(10_000))) < TINY_P  # the limit, not scipy's O(n) exact tail
    assert exact.pvalue < 1e-45 and np.float32(p) == np.float32(exact.pvalue) == 0  # as alibi-detect (float32) reports both
    mild = rng.normal(0.02, 1, 20_000)  # a p-value above the cut stays scipy's exact one
    d, p = ks_from_sorted(ref, None, mild)
    assert TINY_P < p == pytest.approx(ks_2samp(ref, mild, method="asymp").pvalue, rel=1e-9)

"""The statistical-test registry: names, column kinds, result types, errors that list the valid tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from components.errors import ConfigError
from components.monitor.psi import psi_test
from components.monitor.stattests import STAT_TESTS, get_stattest, stattest_names

pytestmark = pytest.mark.unit


def test_names_by_kind_and_result() -> None:
    assert stattest_names("num", result="p_value") == ["ks", "cvm"]
    assert stattest_names("cat", result="p_value") == ["chi2", "fet"]
    assert "fet" in stattest_names("bin") and "fet" not in stattest_names("num")
    assert get_stattest("chi2", "cat").detector == "ChiSquareDrift"
    assert {t.result for t in STAT_TESTS.values()} == {"p_value", "distance"}
    assert all(t.description and t.default_threshold > 0 for t in STAT_TESTS.values())


def test_errors_name_the_valid_tests_for_the_kind() -> None:
    with pytest.raises(ConfigError, match=r"unknown drift test 'kl' \(fix: use one of chi2, fet for categorical columns\)"):
        get_stattest("kl", "cat", result="p_value")
    with pytest.raises(ConfigError, match=r"'ks' does not accept categorical columns \(fix: use one of chi2, fet, psi"):
        get_stattest("ks", "cat")
    with pytest.raises(ConfigError, match=r"'psi' gives a distance, not a p-value \(fix: use one of ks, cvm for numeric"):
        get_stattest("psi", "num", result="p_value")


def test_functions_compute_the_named_statistic() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=400), rng.normal(0.3, 1, 300)
    d, p = get_stattest("ks")(ref, cur)
    expected = ks_2samp(ref, cur, method="asymp")
    assert d == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue, rel=1e-6)
    a, b = rng.choice(3, 500, p=[0.5, 0.3, 0.2]), rng.choice(3, 500, p=[0.3, 0.3, 0.4])
    stat, p = get_stattest("chi2")(a, b)
    table = np.array([np.bincount(a, minlength=3), np.bincount(b, minlength=3)])
    assert stat == pytest.approx(chi2_contingency(table)[0]) and p == pytest.approx(chi2_contingency(table)[1])
    value, none = get_stattest("psi")(ref, cur)
    assert none is None and value == pytest.approx(psi_test(ref, cur).statistic)

"""The statistical-test registry: every drift test by name, with the columns it accepts.

Each :class:`StatTest` carries its function ``(reference, current) -> (statistic, p_value)``,
the column kinds it accepts (``"num"``; ``"cat"``; ``"bin"``, a categorical column with at
most two values), its default threshold, a one-line description and whether its result is
a p-value (drift when below the threshold) or a distance (drift when above). The policy
validates test names through :func:`get_stattest` when it loads, so an unknown or
misplaced name fails there, not in the middle of a run; the drift monitors dispatch
through it. The idea follows Evidently's ``stattests`` registry.

Categorical columns reach the functions as integer codes (both sides encoded over the
union of categories); numeric columns as floats with NaN dropped.

>>> get_stattest("ks", "num").description
'Kolmogorov-Smirnov: the largest gap between the two empirical CDFs'
>>> stattest_names("cat", result="p_value")
['chi2', 'fet']
>>> get_stattest("ks", "cat")
Traceback (most recent call last):
components.errors.ConfigError: drift test 'ks' does not accept categorical columns (fix: use one of chi2, fet, psi for categorical columns)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from components.errors import ConfigError

Kind = Literal["num", "cat", "bin"]
KIND_NAMES = {"num": "numeric", "cat": "categorical", "bin": "binary"}
StatFunction = Callable[[np.ndarray, np.ndarray], tuple[float, float | None]]


@dataclass(frozen=True)
class StatTest:
    """A registered two-sample test.

    ``kinds``: the column kinds it accepts ("bin" alone means a categorical column with at
    most two values); ``result``: ``"p_value"`` (drift below ``default_threshold``) or
    ``"distance"`` (drift above it); ``detector``: the alibi-detect class whose result it
    reproduces, if any.
    """

    name: str
    function: StatFunction
    kinds: frozenset[str]
    default_threshold: float
    description: str
    result: Literal["p_value", "distance"]
    detector: str | None = None

    def accepts(self, kind: str) -> bool:
        """Whether the test runs on columns of ``kind`` (a binary-only test runs on categoricals, checked per column)."""
        return kind in self.kinds or (kind == "cat" and "bin" in self.kinds)

    def __call__(self, reference: np.ndarray, current: np.ndarray) -> tuple[float, float | None]:
        return self.function(reference, current)


# The functions compute what alibi-detect's detectors compute (the same scipy calls on the
# same tables; alibi-detect then stores p-values as float32), without importing
# alibi_detect.cd, which pulls in TensorFlow: a monitoring run needs seconds less.


def _ks(x_ref: np.ndarray, x: np.ndarray) -> tuple[float, float | None]:
    from scipy.stats import ks_2samp

    r = ks_2samp(x_ref, x, alternative="two-sided", method="asymp")  # as alibi-detect's KSDrift
    return float(r.statistic), float(r.pvalue)


def _cvm(x_ref: np.ndarray, x: np.ndarray) -> tuple[float, float | None]:
    from scipy.stats import cramervonmises_2samp

    r = cramervonmises_2samp(x_ref, x, method="auto")  # as alibi-detect's CVMDrift
    return float(r.statistic), float(r.pvalue)


def category_counts(x_ref: Any, x: Any) -> np.ndarray:
    """The 2 x k table of category counts (reference row, current row) over the union of categories.

    >>> category_counts([0, 0, 1], [1, 2]).tolist()
    [[2, 1, 0], [0, 1, 1]]
    """
    categories, codes = np.unique(np.r_[np.asarray(x_ref), np.asarray(x)], return_inverse=True)
    n_ref = len(np.asarray(x_ref))
    return np.vstack([np.bincount(codes[:n_ref], minlength=len(categories)), np.bincount(codes[n_ref:], minlength=len(categories))])


def chi2_from_table(table: np.ndarray) -> tuple[float, float]:
    """Chi-squared test of a 2 x k count table; one category (nothing to compare) is ``(0, 1)``."""
    from scipy.stats import chi2_contingency

    if table.shape[1] < 2:
        return 0.0, 1.0
    stat, p, _, _ = chi2_contingency(table)
    return float(stat), float(p)


def fet_from_table(table: np.ndarray) -> tuple[float, float]:
    """Fisher's exact test (two-sided) of a 2 x 2 table of a binary column: ``(odds ratio, p)``.

    Laid out as alibi-detect's FETDrift: the current and reference counts of the second
    category over the rest of each sample.
    """
    from scipy.stats import fisher_exact

    ref, cur = table if table.shape[1] == 2 else np.pad(table, ((0, 0), (0, 1)))  # one category: none of the second
    res = fisher_exact(np.array([[cur[1], ref[1]], [cur[0], ref[0]]]), alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def _chi2(x_ref: np.ndarray, x: np.ndarray) -> tuple[float, float | None]:
    return chi2_from_table(category_counts(x_ref, x))


def _fet(x_ref: np.ndarray, x: np.ndarray) -> tuple[float, float | None]:
    table = category_counts(x_ref, x)
    if table.shape[1] > 2:
        raise ValueError(f"fet needs a binary column, got {table.shape[1]} categories")
    return fet_from_table(table)


def _psi(x_ref: np.ndarray, x: np.ndarray) -> tuple[float, float | None]:
    from components.monitor.psi import psi_test

    return float(psi_test(x_ref, x).statistic or 0.0), None


STAT_TESTS: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest("ks", _ks, frozenset({"num"}), 0.05, "Kolmogorov-Smirnov: the largest gap between the two empirical CDFs", "p_value", "KSDrift"),
        StatTest("cvm", _cvm, frozenset({"num"}), 0.05, "Cramer-von Mises: the squared gap between the CDFs, summed over all values", "p_value", "CVMDrift"),
        StatTest("chi2", _chi2, frozenset({"cat", "bin"}), 0.05, "chi-squared test of the category counts", "p_value", "ChiSquareDrift"),
        StatTest("fet", _fet, frozenset({"bin"}), 0.05, "Fisher's exact test of a binary column's counts (statistic: odds ratio)", "p_value", "FETDrift"),
        StatTest("psi", _psi, frozenset({"num", "cat"}), 0.25, "population stability index over reference-quantile buckets", "distance"),
    )
}


def stattest_names(kind: str, result: str | None = None) -> list[str]:
    """Names of the registered tests that accept ``kind`` columns (and give ``result``).

    >>> stattest_names("num")
    ['ks', 'cvm', 'psi']
    """
    return [t.name for t in STAT_TESTS.values() if t.accepts(kind) and (result is None or t.result == result)]


def get_stattest(name: str, kind: str | None = None, result: str | None = None) -> StatTest:
    """The test called ``name``, checked to accept ``kind`` columns and give ``result``.

    Raises :class:`~components.errors.ConfigError` naming the valid tests for that kind.

    >>> get_stattest("chi2", "cat").detector
    'ChiSquareDrift'
    >>> get_stattest("anderson")
    Traceback (most recent call last):
    components.errors.ConfigError: unknown drift test 'anderson' (fix: use one of ks, cvm, chi2, fet, psi)
    """
    if kind is not None and kind not in KIND_NAMES:
        raise ValueError(f"unknown column kind {kind!r}; use one of {', '.join(KIND_NAMES)}")
    usable = stattest_names(kind, result) if kind is not None else [t.name for t in STAT_TESTS.values() if result is None or t.result == result]
    where = f" for {KIND_NAMES[kind]} columns" if kind is not None else ""
    test = STAT_TESTS.get(name)
    if test is None:
        raise ConfigError(f"unknown drift test {name!r}", fix=f"use one of {', '.join(usable)}{where}")
    if kind is not None and not test.accepts(kind):
        raise ConfigError(f"drift test {name!r} does not accept {KIND_NAMES[kind]} columns", fix=f"use one of {', '.join(usable)}{where}")
    if result is not None and test.result != result:
        raise ConfigError(f"drift test {name!r} gives a {test.result.replace('_', '-')}, not a {result.replace('_', '-')}", fix=f"use one of {', '.join(usable)}{where}")
    return test

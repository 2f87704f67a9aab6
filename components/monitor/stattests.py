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
    ``"distance"`` (drift above it); ``detector``: the alibi-detect class behind it, if any.
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


def _alibi(detector: str, **settings: Any) -> StatFunction:
    """One alibi-detect detector on one column, as ``(statistic, p_value)``."""

    def run(x_ref: np.ndarray, x: np.ndarray) -> tuple[float, float | None]:
        from alibi_detect import cd

        det = getattr(cd, detector)(np.asarray(x_ref)[:, None], p_val=0.05, **settings)
        out = det.predict(np.asarray(x)[:, None], drift_type="feature", return_p_val=True, return_distance=True)["data"]
        return float(np.asarray(out["distance"]).ravel()[0]), float(np.asarray(out["p_val"]).ravel()[0])

    run.__name__ = f"alibi_{detector}"
    return run


def _psi(x_ref: np.ndarray, x: np.ndarray) -> tuple[float, float | None]:
    from components.monitor.psi import psi_test

    return float(psi_test(x_ref, x).statistic or 0.0), None


STAT_TESTS: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest("ks", _alibi("KSDrift"), frozenset({"num"}), 0.05, "Kolmogorov-Smirnov: the largest gap between the two empirical CDFs", "p_value", "KSDrift"),
        StatTest("cvm", _alibi("CVMDrift"), frozenset({"num"}), 0.05, "Cramer-von Mises: the squared gap between the CDFs, summed over all values", "p_value", "CVMDrift"),
        StatTest("chi2", _alibi("ChiSquareDrift"), frozenset({"cat", "bin"}), 0.05, "chi-squared test of the category counts", "p_value", "ChiSquareDrift"),
        StatTest("fet", _alibi("FETDrift", alternative="two-sided"), frozenset({"bin"}), 0.05, "Fisher's exact test of a binary column's counts (statistic: odds ratio)", "p_value", "FETDrift"),
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

"""The fast path for repeated monitoring: summarise the reference once, test many windows.

:class:`ReferenceSummary` sorts each numeric reference column and counts each categorical
one; each new window then costs one sort of its own columns, with the same KS / Cramer-von
Mises / chi-squared / Fisher results as alibi-detect's detectors, without importing them (and
TensorFlow with them). ``drift.feature_drift`` (what ``driftloop monitor`` runs) uses it with
``exact=True``; a registered :class:`~components.monitor.profile.ReferenceProfile` gives it
the sorted columns without sorting them again (:meth:`ReferenceSummary.from_sorted`).

>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"age": rng.normal(40, 10, 500), "plan": rng.choice(["a", "b"], 500)})
>>> cur = pd.DataFrame({"age": rng.normal(45, 10, 500), "plan": rng.choice(["a", "b"], 500)})
>>> summary = ReferenceSummary.fit(ref, numeric=["age"], categorical=["plan"], p_value=0.05)
>>> [(r.feature, r.test, r.drift) for r in summary.test(cur)]
[('age', 'ks', True), ('plan', 'chi2', False)]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from components.errors import DataError
from components.monitor._checks import categorical_values, numeric_values, require_rows
from components.monitor._correction import Score, check_settings, corrected_results
from components.monitor.results import TestResult
from components.monitor.stattests import chi2_from_table, fet_from_table, get_stattest

TINY_P = 1e-50  # below float32's smallest value (alibi-detect's p-values) by 1e5; see ks_from_sorted


def tie_left(sorted_values: np.ndarray) -> np.ndarray | None:
    """For sorted ``v``: the number of values < v[i] for each i, or None when there are no ties (then it is i)."""
    n = len(sorted_values)
    if n < 2 or not np.any(sorted_values[1:] == sorted_values[:-1]):
        return None
    return _tie_ranks(sorted_values)[0]


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


def ks_from_sorted(ref_sorted: np.ndarray, ref_left: np.ndarray | None, cur: np.ndarray, band: tuple[float, float] | None = None) -> tuple[float, float]:
    """Two-sided two-sample KS (scipy's ``mode='asymp'``, as alibi-detect uses) against a pre-sorted reference.

    ``ref_left[i]`` is the number of reference values below ``ref_sorted[i]`` (ties share it;
    None: no ties, so it is ``i``, as :func:`tie_left` gives).
    One sort of ``cur`` and one binary search of it into the reference: between two current
    values the reference CDF minus the current CDF peaks at the last reference value before
    the next current value, so both the sup and the inf of F_ref - F_cur are read at the
    current points (exact integer arithmetic, one division at the end).

    The p-value is scipy's exact ``kstwo.sf(d, round(n m / (n + m)))``. Given ``band`` (the
    lowest and highest threshold the correction can set), a p-value more than 10x outside it
    comes from the Kolmogorov limit ``kstwobign`` instead (within ~1% at these sizes): the
    same verdict, and up to 1000x cheaper for large drifts. Without a band, a p-value whose
    Kolmogorov limit is below :data:`TINY_P` (1e-50) is that limit too: scipy's exact tail
    there is a sum over the sample (about 0.5 s per drifted feature at 1M rows), and any
    p-value that small is 0 in alibi-detect's float32 and far below every threshold.

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
    if tied.any():  # reference values < c_j
        below = np.where(tied, prev if ref_left is None else ref_left[prev], at_or_below)
    else:
        below = at_or_below
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
    approx = float(distributions.kstwobign.sf(d * np.sqrt(en)))
    if approx < TINY_P or (band is not None and (approx < band[0] / 10 or approx > band[1] * 10)):
        return d, approx
    return d, float(np.clip(distributions.kstwo.sf(d, en), 0, 1))


def _pooled_midranks(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (scipy's ``rankdata(method="average")``) of both sorted samples in the pooled sample.

    A stable argsort of two sorted runs is a merge (linear), not a sort of the pooled sample.
    """
    pooled = np.concatenate([ref_sorted, cur_sorted])
    order = np.argsort(pooled, kind="stable")
    below, at_or_below = _tie_ranks(pooled[order])
    ranks = np.empty(len(pooled), dtype=np.float64)
    ranks[order] = (below + at_or_below + 1) / 2.0  # ranks below+1 .. at_or_below, averaged
    return ranks[: len(ref_sorted)], ranks[len(ref_sorted):]


def cvm_from_sorted(ref_sorted: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Two-sample Cramer-von Mises (scipy's ``cramervonmises_2samp(ref, cur, method="auto")``, as alibi-detect's CVMDrift) against a pre-sorted reference.

    The pooled midranks come from merging the sorted reference with the sorted current
    window instead of sorting the pooled sample, then U, T and the asymptotic p-value exactly as scipy computes them (scipy itself runs
    the exact small-sample p-value, when either side has at most 20 values).

    >>> from scipy.stats import cramervonmises_2samp
    >>> rng = np.random.default_rng(3)
    >>> ref, cur = np.sort(rng.normal(size=200)), rng.normal(0.3, 1, 150)
    >>> t, p = cvm_from_sorted(ref, cur)
    >>> r = cramervonmises_2samp(ref, cur)
    >>> (t, p) == (float(r.statistic), float(r.pvalue))
    True
    """
    from scipy.stats import cramervonmises_2samp

    nx, ny = len(ref_sorted), len(cur)
    if max(nx, ny) <= 20 or min(nx, ny) <= 1:  # scipy's exact method (and its input checks)
        r = cramervonmises_2samp(ref_sorted, cur, method="auto")
        return float(r.statistic), float(r.pvalue)
    # scipy's own p-value function (private; the scipy version is pinned in constraints.txt)
    from scipy._lib._array_api import array_namespace
    from scipy.stats._hypotests import _pval_cvm_2samp_asymptotic

    rx, ry = _pooled_midranks(ref_sorted, np.sort(cur))
    u = nx * np.sum((rx - np.arange(1, nx + 1, dtype=np.float64)) ** 2) + ny * np.sum((ry - np.arange(1, ny + 1, dtype=np.float64)) ** 2)
    k, n_all = nx * ny, nx + ny
    t = u / (k * n_all) - (4 * k - 1) / (6 * n_all)
    t_arr = np.asarray(t)
    return float(t), float(_pval_cvm_2samp_asymptotic(t_arr, n_all, nx, ny, k, xp=array_namespace(t_arr)))


def _count_table(ref_counts: dict[str, int], cur_values: np.ndarray) -> np.ndarray:
    """The 2 x k table (reference row, current row) over the sorted union of categories."""
    cats, cur_n = np.unique(cur_values, return_counts=True)
    cur_counts = dict(zip(cats.tolist(), cur_n.tolist(), strict=True))
    keys = sorted(set(ref_counts) | set(cur_counts))
    return np.array([[ref_counts.get(k, 0) for k in keys], [cur_counts.get(k, 0) for k in keys]])


@dataclass
class ReferenceSummary:
    """A reference window summarised once (sorted numeric columns, category counts) and reused per window.

    Build it with :meth:`fit`; :meth:`test` costs one sort of the current columns per window.
    """

    numeric: dict[str, tuple[np.ndarray, np.ndarray | None, int]]  # sorted values, tie_left (None: no ties), NaN dropped
    categorical: dict[str, tuple[dict[str, int], int]]
    numeric_test: str = "ks"
    categorical_test: str = "chi2"
    correction: str = "bonferroni"
    p_value: float = 0.05
    exact: bool = False  # exact KS p-values always (else the Kolmogorov limit far from the threshold)

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
        exact: bool = False,
    ) -> ReferenceSummary:
        """Sort each numeric reference column and count each categorical one.

        ``exact=True`` gives every KS p-value exactly as scipy's ``ks_2samp(method="asymp")``
        (what ``driftloop monitor`` reports); the default trades p-values far outside the
        threshold band for speed, with the same verdicts.
        """
        require_rows(reference, "reference")
        nums = {}
        for col in numeric:
            values, n_nan = numeric_values(reference, col, "reference")
            nums[col] = (np.sort(values), n_nan)
        cats = {}
        for col in categorical:
            values, n_nan = categorical_values(reference, col, "reference")
            keys, counts = np.unique(values, return_counts=True)
            cats[col] = (dict(zip(keys.tolist(), counts.tolist(), strict=True)), n_nan)
        return cls.from_sorted(nums, cats, numeric_test, categorical_test, correction, p_value, exact)

    @classmethod
    def from_sorted(
        cls,
        numeric: dict[str, tuple[np.ndarray, int]],
        categorical: dict[str, tuple[dict[str, int], int]],
        numeric_test: str = "ks",
        categorical_test: str = "chi2",
        correction: str = "bonferroni",
        p_value: float = 0.05,
        exact: bool = False,
    ) -> ReferenceSummary:
        """A summary from columns already sorted (``{column: (sorted values, NaN count)}``) and counted.

        What a registered :class:`~components.monitor.profile.ReferenceProfile` holds: no sort
        of the reference at monitoring time.
        """
        check_settings(p_value, correction)
        get_stattest(numeric_test, "num", result="p_value")
        if categorical:
            get_stattest(categorical_test, "cat", result="p_value")
        nums = {col: (values, tie_left(values), n_nan) for col, (values, n_nan) in numeric.items()}
        return cls(nums, dict(categorical), numeric_test, categorical_test, correction, p_value, exact)

    def _threshold_band(self) -> tuple[float, float]:
        """The lowest and highest per-feature threshold the correction can set."""
        return self.p_value / max(1, len(self.numeric) + len(self.categorical)), self.p_value

    def test(self, current: pd.DataFrame, segment: str | None = None) -> list[TestResult]:
        """Test one current window against the summarised reference, corrected across features."""
        require_rows(current, "current")
        scores: list[Score] = []
        for col, (ref_sorted, ref_left, ref_nan) in self.numeric.items():
            cur, cur_nan = numeric_values(current, col, "current")
            if self.numeric_test == "ks":
                d, p = ks_from_sorted(ref_sorted, ref_left, cur, band=None if self.exact else self._threshold_band())
            elif self.numeric_test == "cvm":
                d, p = cvm_from_sorted(ref_sorted, cur)
            else:  # another registered p-value test: the sorted reference is still a valid sample
                d, p = get_stattest(self.numeric_test)(ref_sorted, cur)
            scores.append(Score(col, self.numeric_test, "numeric", d, p, {"n_reference": len(ref_sorted), "n_current": len(cur), "nan_reference": ref_nan, "nan_current": cur_nan}))
        for col, (ref_counts, ref_nan) in self.categorical.items():
            cur_s, cur_nan = categorical_values(current, col, "current")
            table = _count_table(ref_counts, cur_s)
            if self.categorical_test != "fet":
                stat, p = chi2_from_table(table)
            elif table.shape[1] > 2:
                raise DataError(f"column {col!r} has {table.shape[1]} categories; the 'fet' test needs a binary column", fix="use categorical_test: chi2 for this column")
            else:
                stat, p = fet_from_table(table)
            counts = {"n_reference": sum(ref_counts.values()), "n_current": len(cur_s), "nan_reference": ref_nan, "nan_current": cur_nan}
            scores.append(Score(col, self.categorical_test, "categorical", stat, p, counts))
        return corrected_results(scores, self.p_value, self.correction, segment)


__all__ = ["ReferenceSummary", "cvm_from_sorted", "ks_from_sorted", "tie_left"]

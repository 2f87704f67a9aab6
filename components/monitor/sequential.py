"""Wald's sequential probability ratio test for a drop in a Bernoulli rate (CTR, conversion).

H0: ``p = p0`` (the baseline, from the reference) against H1: ``p = p0 * (1 - relative_drop)``.
Each outcome adds ``x * ln(p1/p0) + (1 - x) * ln((1 - p1)/(1 - p0))`` to the log-likelihood
ratio; the test rejects H0 (a drop) when the sum reaches ``ln((1 - beta) / alpha)`` and
accepts H0 when it falls to ``ln(beta / (1 - alpha))``, so the false-alarm rate is at most
``alpha`` and the miss rate at most ``beta`` (Wald 1945). Wald's test stops at the first
boundary; ``restart=True`` starts a fresh test after each acceptance of H0, for a long
stream whose drop may begin late (each restart spends another ``alpha``).

>>> rng = np.random.default_rng(0)
>>> clicks = np.r_[rng.random(2000) < 0.10, rng.random(3000) < 0.06].astype(int)
>>> r = sprt(clicks, p0=0.10, relative_drop=0.3, alpha=0.01, beta=0.1, restart=True)
>>> r.drift, r.detected_at, r.details["h0_accepted_at"][:2]
(True, 2681, [214, 1159])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from components.errors import ConfigError, DataError
from components.monitor._checks import as_1d, require_column, require_rows
from components.monitor.results import TestResult


def _check(p0: float, relative_drop: float, alpha: float, beta: float) -> None:
    if not 0 < p0 < 1:
        raise ConfigError(f"the baseline rate p0 must be in (0, 1), got {p0}", fix="estimate the baseline on a reference window with both outcomes")
    if not 0 < relative_drop < 1:
        raise ConfigError(f"relative_drop must be in (0, 1), got {relative_drop}", fix="use e.g. relative_drop: 0.2")
    if not (0 < alpha < 0.5 and 0 < beta < 0.5):
        raise ConfigError(f"alpha and beta must be in (0, 0.5), got {alpha}, {beta}", fix="use e.g. alpha: 0.05, beta: 0.2")


def llr_increments(outcomes: np.ndarray, p0: float, p1: float) -> np.ndarray:
    """Each 0/1 outcome's term of the log-likelihood ratio of H1 (rate ``p1``) to H0 (rate ``p0``).

    The SPRT's statistic is their running sum; :func:`sprt` and the report's LLR trace both
    use this, so the plotted path is the one the test walked.

    >>> llr_increments(np.array([1, 0]), p0=0.1, p1=0.05).round(4).tolist()
    [-0.6931, 0.054]
    """
    return np.where(np.asarray(outcomes) == 1, math.log(p1 / p0), math.log((1 - p1) / (1 - p0)))


def sprt(
    outcomes: Any,
    p0: float,
    relative_drop: float,
    alpha: float = 0.05,
    beta: float = 0.2,
    segment: str | None = None,
    restart: bool = False,
    positions: np.ndarray | None = None,
) -> TestResult:
    """Run the SPRT over time-ordered 0/1 ``outcomes`` (NaN skipped).

    ``detected_at`` is the index (or ``positions[index]``) where the LLR crossed the upper
    boundary; ``details`` hold the decision ("drop" | "no_drop" | "undecided"), where H0 was
    accepted, the boundaries and the effect size (observed rate vs ``p0``).
    """
    _check(p0, relative_drop, alpha, beta)
    raw = as_1d(outcomes, "outcomes")
    idx = np.flatnonzero(~np.isnan(raw))
    x = raw[idx]
    if not np.isin(x, (0.0, 1.0)).all():
        raise DataError("SPRT outcomes must be 0/1", fix="map the outcome column to 0/1 (e.g. clicked)")
    pos = idx if positions is None else np.asarray(positions)[idx]
    p1 = p0 * (1 - relative_drop)
    upper, lower = math.log((1 - beta) / alpha), math.log(beta / (1 - alpha))
    llr_steps = llr_increments(x, p0, p1)
    accepted: list[int] = []
    fired: int | None = None
    start = 0
    llr = np.cumsum(llr_steps)
    final = 0.0
    while start < len(x):
        path = llr[start:] - (llr[start - 1] if start else 0.0)
        hit_up = np.flatnonzero(path >= upper)
        hit_low = np.flatnonzero(path <= lower)
        first_up = hit_up[0] if hit_up.size else None
        first_low = hit_low[0] if hit_low.size else None
        if first_up is not None and (first_low is None or first_up < first_low):
            fired = start + int(first_up)
            final = float(path[first_up])
            break
        if first_low is None:
            final = float(path[-1])
            break
        accepted.append(start + int(first_low))
        final = float(path[first_low])
        if not restart:
            break
        start = start + int(first_low) + 1
    end = (fired if fired is not None else (accepted[-1] if accepted and not restart else len(x) - 1)) + 1
    seen = x[:end]
    rate = float(seen.mean()) if len(seen) else math.nan
    decision = "drop" if fired is not None else "no_drop" if accepted else "undecided"
    details = {
        "decision": decision,
        "h0_accepted_at": [int(pos[a]) for a in accepted],
        "llr": final,
        "upper": upper,
        "lower": lower,
        "p0": p0,
        "p1": p1,
        "alpha": alpha,
        "beta": beta,
        "n": int(len(x)),
        "n_tested": int(end),
        "nan_dropped": int(len(raw) - len(idx)),
        "observed_rate": rate,
        "effect_size": (rate - p0) / p0 if len(seen) else None,  # relative change of the rate
        "restart": restart,
    }
    return TestResult(
        test="sprt",
        statistic=final,
        p_value=None,
        threshold=upper,
        drift=fired is not None,
        metric="rate",
        segment=segment,
        detected_at=int(pos[fired]) if fired is not None else None,
        status="ok" if len(x) else "insufficient_data",
        details=details,
    )


def sprt_by_cohort(
    df: pd.DataFrame,
    cohort_column: str,
    outcome: str,
    baseline: dict[str, float] | pd.DataFrame,
    relative_drop: float,
    alpha: float = 0.05,
    beta: float = 0.2,
    restart: bool = False,
) -> list[TestResult]:
    """One SPRT per cohort of the time-ordered ``df``; ``detected_at`` is the row position in ``df``.

    ``baseline`` is a rate per cohort, or a reference DataFrame to compute it from. A
    cohort with no usable baseline (absent, or a rate of 0 or 1) gets ``insufficient_data``.

    >>> rng = np.random.default_rng(1)
    >>> n = 6000
    >>> df = pd.DataFrame({"cohort": rng.choice(["new", "power"], n), "clicked": (rng.random(n) < 0.1).astype(int)})
    >>> df.loc[(df.index >= 1000) & (df.cohort == "power"), "clicked"] = (rng.random(n) < 0.05).astype(int)[(df.index >= 1000) & (df.cohort == "power")]
    >>> res = sprt_by_cohort(df, "cohort", "clicked", {"new": 0.1, "power": 0.1}, relative_drop=0.3, alpha=0.01, beta=0.1, restart=True)
    >>> [(r.segment, r.drift, r.detected_at) for r in res]
    [('new', False, None), ('power', True, 1553)]
    """
    require_rows(df, "current")
    cohorts = require_column(df, cohort_column, "current")
    require_column(df, outcome, "current")
    if isinstance(baseline, pd.DataFrame):
        require_column(baseline, cohort_column, "baseline")
        require_column(baseline, outcome, "baseline")
        rates = baseline.groupby(baseline[cohort_column].astype(str))[outcome].mean().to_dict()
    else:
        rates = {str(k): float(v) for k, v in baseline.items()}
    labels = cohorts.astype(str).to_numpy()
    values = pd.to_numeric(df[outcome], errors="coerce").to_numpy(dtype=float)
    results = []
    for cohort in sorted(set(labels.tolist())):
        positions = np.flatnonzero(labels == cohort)
        p0 = rates.get(cohort)
        if p0 is None or not 0 < p0 < 1:
            reason = f"no baseline rate for cohort {cohort!r}" if p0 is None else f"baseline rate {p0} for cohort {cohort!r} is not in (0, 1)"
            results.append(TestResult(test="sprt", statistic=None, p_value=None, threshold=None, drift=False, metric="rate", segment=cohort,
                                      status="insufficient_data", details={"reason": reason, "n": int(len(positions))}))
            continue
        results.append(sprt(values[positions], p0, relative_drop, alpha, beta, segment=cohort, restart=restart, positions=positions))
    return results

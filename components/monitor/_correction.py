"""Multiple-testing corrections across features: one per-feature p-value threshold.

:func:`corrected_results` turns the raw per-feature scores of a drift test (the
per-column tests in ``drift`` and the fast path in ``reference_summary``) into the
corrected :class:`TestResult` rows both report. The two corrections match alibi-detect's batch-level rules (``p_val / n`` for Bonferroni; the largest
Benjamini-Hochberg step ``q * k / n`` with ``p_(k) < q * k / n`` for FDR), but return the
threshold each feature's p-value is compared with, so a report can show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from components.errors import ConfigError
from components.monitor.results import TestResult

CORRECTIONS = ("bonferroni", "fdr")


def corrected_threshold(p_values: np.ndarray, alpha: float, correction: str) -> float:
    """The per-feature threshold: a feature drifts when its p-value is below it.

    >>> corrected_threshold(np.array([0.001, 0.02, 0.5]), 0.05, "bonferroni")
    0.016666666666666666
    >>> corrected_threshold(np.array([0.001, 0.02, 0.5]), 0.05, "fdr")
    0.03333333333333333
    """
    if correction not in CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r}", fix=f"use one of {', '.join(CORRECTIONS)}")
    n = len(p_values)
    if n == 0:
        return alpha
    if correction == "bonferroni" or n == 1:
        return alpha / n
    steps = alpha * np.arange(1, n + 1) / n
    below = np.flatnonzero(np.sort(p_values) < steps)
    # No rejection: report the first (strictest) BH step, which no p-value passes.
    return float(steps[below.max()]) if below.size else float(steps[0])


def adjusted_p_values(p_values: np.ndarray, correction: str) -> np.ndarray:
    """Adjusted p-values (Bonferroni ``min(1, n p)``; Benjamini-Hochberg step-up).

    >>> adjusted_p_values(np.array([0.01, 0.04, 0.03]), "fdr").round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=float)
    n = len(p)
    if n == 0:
        return p
    if correction == "bonferroni":
        return np.minimum(1.0, p * n)
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(1.0, ranked)
    return out


def check_settings(p_value: float, correction: str) -> None:
    if not 0 < p_value < 1:
        raise ConfigError(f"p_value must be in (0, 1), got {p_value}", fix="use e.g. p_value: 0.05")
    if correction not in CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r}", fix=f"use one of {', '.join(CORRECTIONS)}")


@dataclass
class Score:
    """One feature's raw test outcome before the correction across features."""

    feature: str
    test: str
    kind: str
    statistic: float
    p_value: float
    counts: dict[str, int] = field(default_factory=dict)


def corrected_results(scores: list[Score], p_value: float, correction: str, segment: str | None, extra: dict[str, Any] | None = None) -> list[TestResult]:
    """One TestResult per score, its threshold corrected across all ``scores``."""
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

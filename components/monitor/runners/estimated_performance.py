"""The estimated-performance monitor: CBPE on the current window's predictions, no labels needed.

Per scope (overall and/or segments) the estimator learns calibration and sampling error
from the labelled, scored reference, then estimates the metric on every scored current row;
labels already known in the current window add the realised value beside the estimate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from components.errors import DataError
from components.monitor.context import MonitorContext, insufficient
from components.monitor.results import TestResult
from components.monitor.runners._text import fmt_value

if TYPE_CHECKING:
    from components.policy import EstimatedPerformanceMonitor


def run(ctx: MonitorContext, m: EstimatedPerformanceMonitor) -> dict[str, Any]:
    from components.monitor.estimated import estimate_check, fit_estimator

    policy = ctx.policy
    results: list[TestResult] = []
    warnings: list[str] = []
    for seg, ref, cur in ctx.scopes(m):
        lab = ctx.labelled(ref, scored=True)
        scored = cur[cur[policy.prediction].notna()] if policy.prediction in cur.columns else cur.iloc[0:0]
        try:
            estimator = fit_estimator(lab[policy.label].astype(int).to_numpy(), lab[policy.prediction].to_numpy(float), seed=m.seed)
        except DataError as exc:
            results.append(insufficient("cbpe", len(lab), 200, metric=m.metric, segment=seg))
            warnings.append(f"{m.name}{f' [{seg}]' if seg else ''}: {exc.problem}")
            continue
        labels = scored[policy.label].to_numpy(float) if policy.label in scored.columns else None
        base = ctx.baseline_metric(m.metric, seg)
        results.append(estimate_check(estimator, scored[policy.prediction].to_numpy(float), m.metric, labels=labels, min=m.min,
                                      max_relative_drop=m.max_relative_drop, min_samples=m.min_samples, segment=seg,
                                      baseline=base))
        if not estimator.calibration.trusted:
            warnings.append(results[-1].details.get("warning", ""))
    hits = [r for r in results if r.drift]
    entry: dict[str, Any] = {"fired": bool(hits), "results": results, "summary": _summary(m, results),
                             "blind_spot": "estimated from predictions alone: pure concept drift (P(label | inputs) moving while "
                                           "inputs stay put) leaves it flat; the labelled performance and concept-drift monitors cover that"}
    if warnings:
        entry["warnings"] = [w for w in warnings if w]
    return entry


def _summary(m: EstimatedPerformanceMonitor, results: list[TestResult]) -> str:
    parts = []
    for r in sorted(results, key=lambda r: not r.drift)[:3]:
        where = f" [{r.segment}]" if r.segment else ""
        d = r.details
        if r.status != "ok":
            parts.append(f"estimated {m.metric}{where}: insufficient data (n={d.get('n')})")
            continue
        band = f"band {fmt_value(d['lower'])}-{fmt_value(d['upper'])}"
        limit = f"{'<' if r.drift else '>='} {fmt_value(r.threshold)}" if r.threshold is not None else ""
        realised = d.get("realised")
        seen = f", realised {fmt_value(realised)} on {d.get('labelled')} labelled" if realised is not None and not np.isnan(realised) else ""
        parts.append(f"estimated {m.metric}{where} {fmt_value(r.statistic)} {limit} ({band}, n={d.get('n')}{seen})")
    return "; ".join(parts)

"""The performance monitor: a metric against its limits on labelled rows, slices when it fires."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from components.metrics import LOWER_IS_BETTER
from components.monitor.context import MonitorContext, insufficient
from components.monitor.results import TestResult
from components.monitor.runners._slices import rank_error_slices
from components.monitor.runners._text import fmt_value

if TYPE_CHECKING:
    from components.policy import PerformanceMonitor


def run(ctx: MonitorContext, m: PerformanceMonitor) -> dict[str, Any]:
    from components.monitor.performance import metric_check

    policy = ctx.policy
    results: list[TestResult] = []
    for seg, _ref, cur in ctx.scopes(m):
        lab = ctx.labelled(cur, scored=True)
        base = ctx.baseline_metric(m.metric, seg)
        drop = m.max_relative_drop
        if drop is not None and base is None:
            if m.min is None and m.max is None:  # nothing to compare with: say so, do not guess
                results.append(insufficient("metric", len(lab), m.min_samples, metric=m.metric, segment=seg))
                continue
            drop = None  # no baseline: check the absolute limits only
        y_true = lab[policy.label].astype(int).to_numpy() if len(lab) else np.array([], dtype=int)
        y_score = lab[policy.prediction].to_numpy(float) if len(lab) else np.array([], dtype=float)
        results.append(metric_check(y_true, y_score, m.metric, baseline=base, min=m.min, max=m.max, max_relative_drop=drop,
                                    confidence=m.confidence, min_samples=m.min_samples, segment=seg))
    hits = [r for r in results if r.drift]
    entry: dict[str, Any] = {"fired": bool(hits), "results": results, "summary": _performance_summary(m, results)}
    if hits and m.slice_by:
        seg = hits[0].segment
        cur = ctx.labelled(ctx.cur if seg is None else ctx.segment_rows(ctx.cur, policy.segment_column, seg), scored=True)
        ref = ctx.labelled(ctx.ref if seg is None else ctx.segment_rows(ctx.ref, policy.segment_column, seg), scored=True)
        entry["slices"] = rank_error_slices(ctx, cur, ref, m.slice_by)
    return entry


def _performance_summary(m: PerformanceMonitor, results: list[TestResult]) -> str:
    parts = []
    for r in sorted(results, key=lambda r: not r.drift):
        d = r.details
        where = f" [{r.segment}]" if r.segment else ""
        n = d.get("n")
        if r.status != "ok":
            parts.append(f"{m.metric}{where}: insufficient data (n={n} < {d.get('min_samples', m.min_samples)})")
            continue
        ci = d.get("ci") or (d.get("ci_low"), d.get("ci_high"))
        ci_text = f", {int(round(m.confidence * 100))}% CI {fmt_value(ci[0])}-{fmt_value(ci[1])}" if ci and ci[0] is not None else ""
        base = d.get("baseline")
        value = r.statistic
        if m.max_relative_drop is not None and base is not None:
            drop = d.get("relative_drop")
            if drop is None and value is not None:
                drop = (base - value) / abs(base) if m.metric not in LOWER_IS_BETTER else (value - base) / abs(base)
            cmp = ">" if r.drift else "<="
            parts.append(f"{m.metric}{where} {fmt_value(value)} vs baseline {fmt_value(base)} (drop {drop:.1%} {cmp} {m.max_relative_drop:.0%}; n={n}{ci_text})")
        elif m.min is not None and (m.max is None or value is None or value < m.min or not r.drift):
            cmp = "<" if r.drift else ">="
            parts.append(f"{m.metric}{where} {fmt_value(value)} {cmp} {m.min} (n={n}{ci_text})")
        else:
            cmp = ">" if r.drift else "<="
            parts.append(f"{m.metric}{where} {fmt_value(value)} {cmp} {m.max} (n={n}{ci_text})")
        if len(parts) >= 3:
            break
    return "; ".join(parts)

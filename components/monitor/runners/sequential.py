"""The sequential monitor: Wald's SPRT per cohort, with the LLR path for the report."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from components.monitor.context import MonitorContext, insufficient, row_of

if TYPE_CHECKING:
    from components.policy import SequentialMonitor


def run(ctx: MonitorContext, m: SequentialMonitor) -> dict[str, Any]:
    from components.monitor.sequential import sprt_by_cohort

    outcome = m.outcome or ctx.policy.label
    if outcome not in ctx.cur.columns or outcome not in ctx.ref.columns:
        r = insufficient("sprt", 0, m.min_samples, metric=outcome)
        return {"fired": False, "results": [r], "summary": f"insufficient data: no {outcome!r} column yet"}
    cur = ctx.cur[ctx.cur[outcome].notna()]
    ref = ctx.ref[ctx.ref[outcome].notna()]
    if m.segment is not None:
        cur, ref = ctx.segment_rows(cur, ctx.policy.segment_column, m.segment), ctx.segment_rows(ref, ctx.policy.segment_column, m.segment)
    baseline = {str(k): float(v) for k, v in ref.groupby(ref[m.cohort_column].astype(str))[outcome].mean().items()}
    own = _own_baselines(ctx, m.cohort_column, outcome)
    baseline.update(own)
    cur = cur.assign(**{m.cohort_column: cur[m.cohort_column].astype(str), outcome: cur[outcome].astype(int)})
    positions = cur.index.to_numpy()
    raw = sprt_by_cohort(cur.reset_index(drop=True), m.cohort_column, outcome, baseline, m.relative_drop, m.alpha, m.beta)
    labels = cur[m.cohort_column].to_numpy()
    values = cur[outcome].to_numpy(float)
    results = []
    for r in raw:
        row = row_of(positions, r.detected_at)
        details = {**r.details, "reference": "cohort" if r.segment in own else "global"}
        if r.status == "ok":
            details["trace"] = _llr_trace(values[labels == r.segment], details)
        if r.detected_at is not None and row is not None:
            details["detected_timestamp"] = ctx.cur[ctx.policy.timestamp].iloc[row].isoformat()
        results.append(dataclasses.replace(r, metric=r.metric or outcome, detected_at=row, details=details))
    hits = [r for r in results if r.drift]
    if hits:
        summary = "; ".join(
            f"cohort {r.segment}: {outcome} rate {r.details.get('observed_rate', float('nan')):.3f} vs baseline {baseline.get(str(r.segment), float('nan')):.3f} "
            f"(SPRT {int(m.relative_drop * 100)}% drop accepted at row {r.detected_at}"
            f"{', ' + r.details['detected_timestamp'] if r.details.get('detected_timestamp') else ''})"
            for r in sorted(hits, key=lambda r: r.detected_at if r.detected_at is not None else 1 << 62))
    else:
        summary = f"no cohort's {outcome} rate dropped by {m.relative_drop:.0%} ({len(results)} cohorts tested)"
    return {"fired": bool(hits), "results": results, "summary": summary}


def _llr_trace(x: np.ndarray, d: dict[str, Any], points: int = 300) -> list[dict[str, float]]:
    """The SPRT's cumulative log-likelihood ratio over one cohort's outcomes, for plotting.

    The increments of ``sequential.sprt`` (:func:`~components.monitor.sequential.llr_increments`)
    up to where the test stopped (``n_tested``), thinned to about ``points`` points.
    """
    from components.monitor.sequential import llr_increments

    llr = np.cumsum(llr_increments(x[: d.get("n_tested", len(x))], d["p0"], d["p1"]))
    if len(llr) == 0:
        return []
    keep = np.unique(np.r_[np.linspace(0, len(llr) - 1, min(points, len(llr))).astype(int), len(llr) - 1])
    return [{"n": int(i + 1), "llr": float(llr[i])} for i in keep]


def _own_baselines(ctx: MonitorContext, column: str, outcome: str) -> dict[str, float]:
    """The outcome rate of each cohort in its own reference (``ctx.cohort_references``), where it has labelled rows."""
    rates = {}
    for cohort, rows in ctx.cohort_references.items():
        if column in rows.columns:
            rows = rows[rows[column].astype(str) == cohort]
        values = pd.to_numeric(rows[outcome], errors="coerce").dropna() if outcome in rows.columns else pd.Series(dtype=float)
        if len(values):
            rates[cohort] = float(values.mean())
    return rates

"""The concept_drift monitor: an online detector over the time-ordered error stream."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pandas as pd

from components.metrics import correct
from components.monitor.context import MonitorContext, insufficient, row_of
from components.monitor.results import TestResult
from components.monitor.runners._slices import rank_error_slices

if TYPE_CHECKING:
    from components.policy import ConceptDriftMonitor


def run(ctx: MonitorContext, m: ConceptDriftMonitor) -> dict[str, Any]:
    from components.monitor.budget import monitor_false_alarm_rate
    from components.monitor.concept import detect_on_stream

    policy = ctx.policy
    budget = monitor_false_alarm_rate(policy, m)
    warnings: list[str] = []
    results: list[TestResult] = []
    first_hit: tuple[str | None, pd.DataFrame, pd.DataFrame] | None = None
    scopes = ctx.scopes(m)
    for seg, ref, cur in scopes:
        lab_cur, lab_ref = ctx.labelled(cur, scored=True), ctx.labelled(ref, scored=True)
        if len(lab_cur) < m.min_samples:
            results.append(insufficient(m.detector, len(lab_cur), m.min_samples, metric="error_rate", segment=seg))
            continue
        errors = (~correct(lab_cur[policy.label], lab_cur[policy.prediction])).astype(int)
        ref_errors = (~correct(lab_ref[policy.label], lab_ref[policy.prediction])).astype(int) if len(lab_ref) else None
        r = detect_on_stream(errors, detector=m.detector, reference_errors=ref_errors, ert=m.ert, window_size=m.window_size,
                             delta=m.delta, ph_threshold=m.ph_threshold, segment=seg, false_alarm_rate=budget / len(scopes))
        where = f" [{seg}]" if seg else ""
        warnings += [f"{m.name}{where}: {w}" for w in r.details.get("warnings", [])]
        positions = lab_cur.index.to_numpy()  # rows of the full time-ordered window
        details = {**r.details, "n": len(errors), "current_error_rate": float(errors.mean())}
        if ref_errors is not None:
            details["reference_error_rate"] = float(ref_errors.mean())
        row = row_of(positions, r.detected_at)
        if r.detected_at is not None:
            details["stream_position"] = r.detected_at
            details["detected_timestamp"] = ctx.cur[policy.timestamp].iloc[row].isoformat() if row is not None and 0 <= row < len(ctx.cur) else None
        details["timestamps"] = _thin_timestamps(lab_cur[policy.timestamp])
        results.append(dataclasses.replace(r, metric="error_rate", segment=seg, detected_at=row, details=details))
        if r.drift and first_hit is None:
            first_hit = (seg, lab_cur, lab_ref)
    hits = [r for r in results if r.drift]
    stated = sum(r.details.get("false_alarm_rate") or 0.0 for r in results)  # Bonferroni over the scopes
    entry: dict[str, Any] = {"fired": bool(hits), "results": results, "summary": _concept_summary(m, results),
                             "false_alarm_rate": round(stated, 6), "false_alarm_budget": budget, "warnings": warnings}
    if first_hit and m.slice_by:
        _seg, lab_cur, lab_ref = first_hit
        detected = next(r for r in hits if r.segment == _seg).detected_at
        # slice the errors after the detection point, where the new concept lives
        after = lab_cur[lab_cur.index >= detected] if detected is not None else lab_cur
        entry["slices"] = rank_error_slices(ctx, after if len(after) >= m.min_samples // 2 else lab_cur, lab_ref, m.slice_by)
    return entry


def _thin_timestamps(ts: pd.Series, limit: int = 2000) -> dict[str, Any]:
    """Timestamps of the error stream, thinned, so the HTML can put the trace on a time axis."""
    step = max(1, len(ts) // limit)
    return {"step": step, "values": [t.isoformat() for t in ts.iloc[::step]]}


def _concept_summary(m: ConceptDriftMonitor, results: list[TestResult]) -> str:
    parts = []
    for r in results:
        where = f" [{r.segment}]" if r.segment else ""
        d = r.details
        if r.status != "ok":
            parts.append(f"{r.test}{where}: insufficient data ({d.get('n')} labelled rows < {m.min_samples})")
        elif r.drift:
            when = f" at {d['detected_timestamp']}" if d.get("detected_timestamp") else ""
            ref_rate = f"reference {d['reference_error_rate']:.3f}, " if "reference_error_rate" in d else ""
            after = d.get("error_rate_after")
            rates = f"{ref_rate}before {d.get('error_rate_before', float('nan')):.3f}, after {after:.3f}" if after is not None else f"{d['current_error_rate']:.3f}"
            parts.append(f"{r.test}{where} detected an error-rate change at row {r.detected_at}{when} (error rate {rates}; n={d['n']})")
        else:
            parts.append(f"{r.test}{where}: no change in the error stream (error rate {d['current_error_rate']:.3f}, n={d['n']})")
    return "; ".join(parts)

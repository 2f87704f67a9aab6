"""The prediction_drift monitor: a two-sample test on the model's scores, PSI alongside."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from components.monitor.budget import p_value_for
from components.monitor.context import MonitorContext, insufficient
from components.monitor.results import TestResult
from components.monitor.runners._plots import distribution
from components.monitor.runners._text import fmt_p

if TYPE_CHECKING:
    from components.policy import PredictionDriftMonitor


def run(ctx: MonitorContext, m: PredictionDriftMonitor) -> dict[str, Any]:
    from components.monitor.drift import prediction_drift
    from components.monitor.psi import PSIReference, psi_test

    col = ctx.policy.prediction
    results: list[TestResult] = []
    for seg, ref, cur in ctx.scopes(m):
        scope = ctx.profile_scope(m, seg)  # the registered profile, when it covers this monitor
        cs = cur[col].dropna()
        rs: Any = scope if scope is not None else ref[col].dropna().to_numpy()
        n_ref = (len(scope.numeric[col][0]) if col in scope.numeric else 0) if scope is not None else len(rs)
        if min(n_ref, len(cs)) < m.min_samples:
            results.append(insufficient(m.test, min(n_ref, len(cs)), m.min_samples, feature=col, segment=seg))
            continue
        r = prediction_drift(rs, cs.to_numpy(), test=m.test, p_value=p_value_for(ctx.policy, m), segment=seg, column=col)
        results.append(dataclasses.replace(r, feature=col))
        if m.psi is not None:
            fitted = PSIReference.from_profile(scope.numeric[col][0], 0, bins=m.psi.bins) if scope is not None else None
            r = psi_test(None if scope is not None else rs, cs, bins=m.psi.bins, warn=m.psi.warn, drift=m.psi.drift, categorical=False, fitted=fitted)
            results.append(dataclasses.replace(r, feature=col, segment=seg, drift=False, details={**r.details, "informational": True, "psi_drift": r.drift}))
    # the two-sample test decides; PSI is reported alongside (its drift flag kept in details)
    hits = [r for r in results if r.drift]
    tests = [r for r in results if r.test != "psi" and r.status == "ok"]
    if not tests:
        summary = f"insufficient data: {results[0].details.get('n')} predictions < min_samples {m.min_samples}"
    elif hits:
        summary = "; ".join(f"prediction distribution shifted{f' in {r.segment}' if r.segment else ''} ({r.test} stat {r.statistic:.3f}, p{fmt_p(r.p_value)} < {r.threshold})" for r in hits)
    else:
        summary = f"prediction distribution stable ({tests[0].test} p{fmt_p(tests[0].p_value)})"
    psi = [r for r in results if r.test == "psi"]
    if psi:
        summary += f"; PSI {psi[0].statistic:.3f}"
    dist = {col: distribution(ctx.reference_values(m, col, None, False), ctx.cur[col], False)} if hits else {}
    return {"fired": bool(hits), "results": results, "summary": summary, "distributions": dist}

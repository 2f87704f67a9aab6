"""The feature_drift monitor: per-feature tests (corrected across features), PSI, multivariate."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from components.monitor.budget import p_value_for
from components.monitor.context import MonitorContext, insufficient
from components.monitor.results import TestResult
from components.monitor.runners._plots import distribution
from components.monitor.runners._text import fmt_p

if TYPE_CHECKING:
    from components.policy import FeatureDriftMonitor

MAX_PLOTTED_FEATURES = 12


def run(ctx: MonitorContext, m: FeatureDriftMonitor) -> dict[str, Any]:
    from components.monitor.drift import feature_drift
    from components.monitor.multivariate import multivariate_drift
    from components.monitor.psi import PSIReference, psi_test

    policy = ctx.policy
    features = m.features or policy.all_features
    numeric = [f for f in features if f in policy.features]
    categorical = [f for f in features if f in policy.categorical_features]
    tests: list[TestResult] = []
    psis: list[TestResult] = []
    multi: list[TestResult] = []
    for seg, ref, cur in ctx.scopes(m):
        scope = ctx.profile_scope(m, seg)  # the registered profile, when it covers this monitor
        n_ref = scope.rows if scope is not None else len(ref)
        if min(n_ref, len(cur)) < m.min_samples:
            tests.append(insufficient(m.numeric_test, min(n_ref, len(cur)), m.min_samples, segment=seg))
            continue
        tests += feature_drift(scope if scope is not None else ref, cur, numeric, categorical, numeric_test=m.numeric_test,
                               categorical_test=m.categorical_test, correction=m.correction, p_value=p_value_for(ctx.policy, m),
                               tabular=m.tabular, segment=seg)
        if m.psi is not None:
            for f in features:
                cat = f in categorical
                fitted = None
                if scope is not None:
                    values, n_nan = scope.categorical[f] if cat else scope.numeric[f]
                    fitted = PSIReference.from_profile(values, n_nan, bins=m.psi.bins)
                r = psi_test(None if scope is not None else ref[f], cur[f], bins=m.psi.bins, warn=m.psi.warn, drift=m.psi.drift,
                             categorical=cat, fitted=fitted)
                psis.append(dataclasses.replace(r, feature=f, segment=seg))
        if m.multivariate:
            r = multivariate_drift(ref, cur, features, method=m.multivariate, p_value=p_value_for(ctx.policy, m), categorical=categorical)
            multi.append(dataclasses.replace(r, segment=seg))
    test_hits = [r for r in tests + multi if r.drift]
    psi_hits = [r for r in psis if r.drift]
    fired = {"test": bool(test_hits), "psi": bool(psi_hits), "either": bool(test_hits or psi_hits)}[m.fire_on]
    # plot each drifted feature once, in the scope where it drifted (overall first)
    first_scope: dict[str, str | None] = {}
    for r in sorted(test_hits + psi_hits, key=lambda r: r.segment is not None):
        if r.feature and r.feature not in first_scope:
            first_scope[r.feature] = r.segment
    distributions = {}
    for f, seg in list(first_scope.items())[:MAX_PLOTTED_FEATURES]:
        cur = ctx.cur if seg is None else ctx.segment_rows(ctx.cur, policy.segment_column, seg)
        distributions[f if seg is None else f"{f}[{seg}]"] = distribution(ctx.reference_values(m, f, seg, f in categorical), cur[f], f in categorical)
    return {
        "fired": fired,
        "results": tests + psis + multi,
        "summary": _drift_summary(tests, psis, multi, m.fire_on, fired),
        "distributions": distributions,
    }


def _where(r: TestResult) -> str:
    return f"{r.feature}[{r.segment}]" if r.segment else str(r.feature)


def _drift_summary(tests: list[TestResult], psis: list[TestResult], multi: list[TestResult], fire_on: str, fired: bool) -> str:
    done = [r for r in tests if r.status == "ok"]
    if not done and tests:
        r = tests[0]
        return f"insufficient data: {r.details.get('n')} rows < min_samples {r.details.get('min_samples')}"
    parts = []
    hits = sorted((r for r in tests if r.drift), key=lambda r: (r.p_value if r.p_value is not None else 1.0))
    if hits:
        shown = ", ".join(f"{_where(r)} ({r.test} p{fmt_p(r.p_value)})" for r in hits[:4])
        parts.append(f"{len(hits)} of {len(done)} feature tests drifted: {shown}" + (" ..." if len(hits) > 4 else ""))
    elif fire_on != "psi":
        parts.append(f"no feature drifted in {len(done)} tests")
    psi_hits = sorted((r for r in psis if r.drift), key=lambda r: -(r.statistic or 0))
    if psi_hits:
        parts.append("PSI drift: " + ", ".join(f"{_where(r)} {r.statistic:.2f} > {r.threshold:.2f}" for r in psi_hits[:4]))
    elif fire_on != "test" and psis:
        top = max(psis, key=lambda r: r.statistic or 0)
        parts.append(f"PSI below drift threshold (max {_where(top)} {top.statistic:.3f})")
    for r in multi:
        parts.append(f"multivariate {r.test} {'drift' if r.drift else 'no drift'} (p{fmt_p(r.p_value)})")
    return "; ".join(parts)

"""The label_drift monitor: has the share of each label changed?"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from components.monitor.budget import p_value_for
from components.monitor.context import MonitorContext, insufficient
from components.monitor.results import TestResult
from components.monitor.runners._text import fmt_p

if TYPE_CHECKING:
    from components.policy import LabelDriftMonitor


def run(ctx: MonitorContext, m: LabelDriftMonitor) -> dict[str, Any]:
    from components.monitor.drift import label_drift

    label = ctx.policy.label
    results: list[TestResult] = []
    for seg, ref, cur in ctx.scopes(m):
        scope = ctx.profile_scope(m, seg)  # the registered profile, when it covers this monitor
        cl = ctx.labelled(cur)
        if scope is not None:
            n_ref, counts = scope.labelled, scope.categorical.get(label, ({}, 0))[0]
            rl: Any = scope
            ref_rate = counts.get("1", 0) / n_ref if n_ref else float("nan")
        else:
            labelled = ctx.labelled(ref)
            n_ref, rl, ref_rate = len(labelled), labelled[label].astype(int).to_numpy(), float(labelled[label].mean())
        if min(n_ref, len(cl)) < m.min_samples:
            results.append(insufficient(m.test, min(n_ref, len(cl)), m.min_samples, feature=label, segment=seg))
            continue
        r = label_drift(rl, cl[label].astype(int).to_numpy(), test=m.test, p_value=p_value_for(ctx.policy, m), segment=seg, column=label)
        details = {**r.details, "reference_rate": float(ref_rate), "current_rate": float(cl[label].mean())}
        results.append(dataclasses.replace(r, feature=label, details=details))
    ok = [r for r in results if r.status == "ok"]
    hits = [r for r in ok if r.drift]
    if not ok:
        r = results[0]
        summary = f"insufficient data: {r.details.get('n')} labelled rows < min_samples {m.min_samples}"
    else:
        r = hits[0] if hits else ok[0]
        where = f" in {r.segment}" if r.segment else ""
        summary = (f"label rate{where} {r.details['reference_rate']:.3f} -> {r.details['current_rate']:.3f} "
                   f"({r.test} p{fmt_p(r.p_value)} {'<' if r.drift else '>='} {r.threshold})")
    return {"fired": bool(hits), "results": results, "summary": summary}

"""Run every monitor a policy declares on a reference and a current window; decide.

:func:`run_monitors` validates the inputs, sorts the current window by the policy
timestamp (row positions in ``detected_at`` refer to that order), runs each monitor through
its runner (``components.monitor.runners``, one module per monitor type) and returns a :class:`MonitorReport` holding every
result, a one-line summary per monitor, the data the HTML report plots, and the decision.

>>> import numpy as np, pandas as pd
>>> from components.policy import Policy
>>> policy = Policy.model_validate({"model": "m", "entity": "id", "label": "y", "features": ["x"],
...     "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.8, "min_samples": 50}],
...     "actions": [{"when": ["acc"], "strategy": "full"}]})
>>> rng = np.random.default_rng(0)
>>> def window(start, flip):
...     x = rng.normal(size=400); y = (x > 0).astype(int)
...     y = np.where(rng.random(400) < flip, 1 - y, y)
...     return pd.DataFrame({"event_timestamp": pd.date_range(start, periods=400, freq="h", tz="UTC"),
...                          "x": x, "y": y, "prediction": 1 / (1 + np.exp(-4 * x))})
>>> report = run_monitors(policy, window("2025-01-01", 0.05), window("2025-02-01", 0.4), model_version="1")
>>> report.decision["action"], report.decision["strategy"], report.monitor("acc")["fired"]
('retrain', 'full', True)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from components.decision import decide
from components.errors import DataError
from components.monitor.budget import monitor_false_alarm_rate, policy_false_alarm_rate, stated_rate
from components.monitor.context import MonitorContext, prepare_window, window_summary
from components.monitor.results import MonitorReport
from components.monitor.runners import RUNNERS
from components.monitor.validate import profile_warnings, validate_inputs
from components.policy import Policy

if TYPE_CHECKING:
    from components.monitor.profile import ReferenceProfile

Progress = Callable[[str], None]


def run_monitors(policy: Policy, reference: pd.DataFrame | None, current: pd.DataFrame, baseline: dict[str, Any] | None = None,
                 model_version: str | None = None, progress: Progress | None = None, profile: ReferenceProfile | None = None,
                 cohort_references: dict[str, pd.DataFrame] | None = None) -> MonitorReport:
    """Run the policy's monitors and return the report with its decision.

    ``baseline`` holds the champion's metrics as the registry stores them
    (``{"overall": {metric: value}, "segments": {segment: {metric: value}}}``; a flat
    ``{metric: value}`` means overall); metrics it lacks are computed on the reference
    window, which carries predictions and labels too. ``progress`` is called with each
    monitor's name as it finishes. ``profile`` (a registered
    :class:`~components.monitor.profile.ReferenceProfile`) serves the drift monitors it covers
    without touching the reference rows; ``reference`` may then be None when it covers every
    monitor. ``cohort_references`` (``{cohort: rows}``) is a cohort's own reference, its
    specialist's reference sample: the per-cohort SPRT compares the cohort with it.
    """
    cohort_refs = {str(k): prepare_window(policy, v) for k, v in (cohort_references or {}).items()}
    if reference is None:
        if profile is None:
            raise DataError("no reference window and no reference profile", fix="pass --reference or a model version with a registered profile")
        cur = prepare_window(policy, current)
        ctx = MonitorContext(policy, cur.iloc[0:0], cur, baseline or {}, profile, cohort_refs)
        need_rows = [m.name for m in policy.monitors if not ctx.uses_profile(m)]
        if need_rows:
            raise DataError(f"monitors {need_rows} need the reference rows, which the reference profile does not hold",
                            fix="pass the reference window too (--reference)")
        warnings = validate_inputs(policy, None, current) + profile_warnings(policy, profile, current)
        ref_window = profile.window
    else:
        warnings = validate_inputs(policy, reference, current)
        ref = prepare_window(policy, reference)
        cur = prepare_window(policy, current)
        ctx = MonitorContext(policy, ref, cur, baseline or {}, profile, cohort_refs)
        ref_window = window_summary(policy, ref)
    if profile is not None:
        ref_window = {**ref_window, "profile_sha256": profile.sha256, "profiled_monitors": [m.name for m in policy.monitors if ctx.uses_profile(m)]}
    monitors: list[dict[str, Any]] = []
    for m in policy.monitors:
        entry = RUNNERS[m.type](ctx, m)
        entry = {"name": m.name, "type": m.type, **entry}
        entry["results"] = [r.to_dict() for r in entry["results"]]
        entry.setdefault("false_alarm_budget", monitor_false_alarm_rate(policy, m))
        entry["false_alarm_rate"] = stated_rate(policy, m, entry)
        warnings += entry.pop("warnings", [])
        monitors.append(entry)
        if progress:
            progress(m.name)
    total = sum(e["false_alarm_rate"] or 0.0 for e in monitors)
    if total > policy_false_alarm_rate(policy) * 1.0001:
        stated = ", ".join(f"{e['name']} {e['false_alarm_rate']:.3g}" for e in monitors if e["false_alarm_rate"])
        warnings.append(f"the monitors state {total:.3g} false alarms per run in sum ({stated}), above the policy's "
                        f"{policy_false_alarm_rate(policy):.3g}: lower their p_value/alpha or unset them to use the budget")
    window = window_summary(policy, cur)
    decision = decide(policy, monitors, model_version, window)
    return MonitorReport(
        model=policy.model, model_version=model_version, window=window, monitors=monitors,
        decision=decision.to_dict(), created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reference_window=ref_window, warnings=warnings,
    )

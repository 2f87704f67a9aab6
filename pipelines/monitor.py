"""The monitor pipeline: reference and current windows -> validate -> monitors -> decision.

>>> p = build("local")
>>> p.name
'driftloop-monitor'
>>> sorted(p.component_spec.inputs)[:3]
['current_end', 'current_start', 'model_version']
"""

# No "from __future__ import annotations": KFP reads the pipeline signature's real types.
from typing import Any

from kfp import dsl

from components.kfp.data import get_features, resolve_windows, validate_data
from components.kfp.monitor import decide, run_monitor
from pipelines.platform import compute_step, pure, server_step, time_dependent


def monitor_steps(target: str, policy: Any, reference_start: Any, reference_end: Any, current_start: Any, current_end: Any,
                  source: Any, model_version: Any, workdir: Any, emergency: Any = False) -> Any:
    """Add the monitoring steps to the pipeline being defined; return the decide task."""
    windows = time_dependent(resolve_windows(policy=policy, source=source, current_start=current_start, current_end=current_end,
                                             reference_start=reference_start, reference_end=reference_end))
    windows.set_display_name("resolve windows")
    w = windows.outputs
    reference = server_step(pure(get_features(policy=policy, start=w["reference_start"], end=w["reference_end"], source=source, cohort="", workdir=workdir)), target, feast=True)
    reference.set_display_name("reference window")
    # The current window may end "now" (empty end): never served from cache.
    current = server_step(time_dependent(get_features(policy=policy, start=w["current_start"], end=w["current_end"], source=source, cohort="", workdir=workdir)), target, feast=True)
    current.set_display_name("current window")
    checked_ref = pure(validate_data(policy=policy, data=reference.outputs["data"], min_rows=1, need_label=True))
    checked_ref.set_display_name("validate reference")
    checked_cur = pure(validate_data(policy=policy, data=current.outputs["data"], min_rows=1, need_label=False))
    checked_cur.set_display_name("validate current")
    monitor = run_monitor(policy=policy, reference=reference.outputs["data"], current=current.outputs["data"], model_version=model_version, workdir=workdir)
    monitor.after(checked_ref, checked_cur)
    server_step(compute_step(time_dependent(monitor), target), target)  # reads the champion from the registry
    decision = server_step(time_dependent(decide(policy=policy, report=monitor.outputs["report"], window_end=w["current_end"], workdir=workdir, emergency=emergency)), target)
    return decision


def build(target: str = "cluster") -> Any:
    """The monitor pipeline for ``target`` ("cluster" or "local")."""

    @dsl.pipeline(name="driftloop-monitor", description="Run a policy's monitors on a data window and decide what to do.")
    def monitor_pipeline(policy: str, current_start: str = "", current_end: str = "", reference_start: str = "", reference_end: str = "",
                         source: str = "", model_version: str = "", workdir: str = "") -> str:
        decision = monitor_steps(target, policy, reference_start, reference_end, current_start, current_end, source, model_version, workdir)
        return decision.outputs["action"]

    return monitor_pipeline

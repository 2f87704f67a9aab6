"""The loop: monitor -> decide -> (if retrain) training with the decided strategy/window/cohort -> evaluate.

``emergency=True`` (``driftloop submit --emergency``) retrains at once on the newest
labelled data with the policy's emergency action, without waiting for the schedule.

>>> p = build("local")
>>> p.name
'driftloop-monitor-and-retrain'
>>> "emergency" in p.component_spec.inputs
True
"""

# No "from __future__ import annotations": KFP reads the pipeline signature's real types.
from typing import Any

from kfp import dsl

from pipelines.monitor import monitor_steps
from pipelines.train import training_steps


def build(target: str = "cluster") -> Any:
    """The monitor-and-retrain pipeline for ``target`` ("cluster" or "local")."""

    @dsl.pipeline(name="driftloop-monitor-and-retrain", description="Monitor a window; when the policy says retrain, train with the decided strategy and gate it.")
    def monitor_and_retrain(policy: str, current_start: str = "", current_end: str = "", reference_start: str = "", reference_end: str = "",
                            source: str = "", model_version: str = "", workdir: str = "", emergency: bool = False) -> str:
        decision = monitor_steps(target, policy, reference_start, reference_end, current_start, current_end, source, model_version, workdir, emergency)
        d = decision.outputs
        with dsl.If(d["action"] == "retrain", name="retrain"):
            training_steps(target, policy, d["strategy"], d["end"], d["window"], d["cohort"], source, workdir, d["idempotency_key"])
        return d["action"]

    return monitor_and_retrain

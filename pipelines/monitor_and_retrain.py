"""The loop: monitor -> decide -> (if retrain) train with the decided strategy/training window/cohort -> gate -> register -> canary a new challenger.

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

from components.kfp.monitor import settle_decision
from pipelines.monitor import monitor_steps
from pipelines.platform import server_step, time_dependent
from pipelines.rollout import rollout_steps
from pipelines.train import training_steps


def build(target: str = "cluster") -> Any:
    """The monitor-and-retrain pipeline for ``target`` ("cluster" or "local")."""

    # The retrain branch is its own sub-DAG whose condition reads a DAG input: kfp.local
    # 2.17 resolves If-conditions only on inputs and on single "Output" task outputs, not
    # on a named output of a multi-output task such as decide's "action".
    @dsl.pipeline(name="retrain-if-decided")
    def retrain_if_decided(policy: str, action: str, strategy: str, end: str, window: str, cohort: str, source: str, workdir: str,
                           decision_key: str, canary: str, namespace: str, isvc: str, replay: str, interval_seconds: float) -> None:
        def canary_after(register: Any) -> None:
            with dsl.If(canary != "none", name="canary"):
                rollout_steps(target, policy, canary, namespace, isvc, replay, interval_seconds, workdir).after(register)

        # A failed retrain gives its ledger claim back (claim -> train -> register marks it done).
        # Never cached: the same key and final status again (a second failed run of the window)
        # must release the new claim too, not replay the first release from the cache.
        settle = server_step(time_dependent(settle_decision(decision_key=decision_key, workdir=workdir)), target)
        settle.set_display_name("settle decision")
        with dsl.ExitHandler(settle, name="retrain-or-release"), dsl.If(action == "retrain", name="retrain"):
            training_steps(target, policy, strategy, end, window, cohort, source, workdir, decision_key, then=canary_after)

    @dsl.pipeline(name="driftloop-monitor-and-retrain", description="Monitor a window; when the policy says retrain, train with the decided strategy and gate it.")
    def monitor_and_retrain(policy: str, current_start: str = "", current_end: str = "", reference_start: str = "", reference_end: str = "",
                            source: str = "", model_version: str = "", workdir: str = "", emergency: bool = False, canary: str = "kubernetes",
                            namespace: str = "default", isvc: str = "", replay: str = "", interval_seconds: float = 0.0) -> str:
        decision = monitor_steps(target, policy, reference_start, reference_end, current_start, current_end, source, model_version, workdir, emergency)
        d = decision.outputs
        branch = retrain_if_decided(policy=policy, action=d["action"], strategy=d["strategy"], end=d["end"], window=d["window"], cohort=d["cohort"],
                                    source=source, workdir=workdir, decision_key=d["idempotency_key"], canary=canary, namespace=namespace,
                                    isvc=isvc, replay=replay, interval_seconds=interval_seconds)
        branch.set_display_name("retrain if decided")
        return d["action"]

    return monitor_and_retrain

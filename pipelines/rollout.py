"""The rollout pipeline: canary the registered challenger, promote it or roll it back.

``canary`` picks the traffic backend: "kubernetes" (patch the InferenceService, read
Prometheus), "local" (model servers and a router here, ``replay`` as traffic) or "none".

>>> p = build("local")
>>> p.name
'driftloop-rollout'
>>> sorted(p.component_spec.inputs)
['canary', 'interval_seconds', 'isvc', 'namespace', 'policy', 'replay', 'workdir']
"""

# No "from __future__ import annotations": KFP reads the pipeline signature's real types.
from typing import Any

from kfp import dsl

from components.kfp.canary import PREDICTION_LOG_DIR
from components.kfp.rollout import canary_rollout
from pipelines.platform import prediction_log_step, server_step, time_dependent


def rollout_steps(target: str, policy: Any, canary: Any, namespace: Any, isvc: Any, replay: Any, interval_seconds: Any, workdir: Any) -> Any:
    """Add the canary step; it is never cached and never retried (a retry would restart the traffic split).

    On a cluster it mounts the prediction-log volume and reads the log there, with labels
    from the label store; a local run reads ``<workdir>/predictions``.
    """
    log_dir = PREDICTION_LOG_DIR if target == "cluster" else ""
    task = canary_rollout(policy=policy, backend=canary, namespace=namespace, isvc=isvc, replay=replay, interval_seconds=interval_seconds, workdir=workdir,
                          log_dir=log_dir, labels="store")
    task.set_display_name("canary rollout")
    # feast: the labelled checks read the label store (Feast's production offline store), which needs the driftloop-feast secret
    return prediction_log_step(server_step(time_dependent(task), target, retries=0, feast=True), target)


def build(target: str = "cluster") -> Any:
    """The rollout pipeline for ``target`` ("cluster" or "local")."""

    @dsl.pipeline(name="driftloop-rollout", description="Canary the challenger by the policy's steps; promote it or roll it back.")
    def rollout_pipeline(policy: str, canary: str = "kubernetes", namespace: str = "default", isvc: str = "", replay: str = "",
                         interval_seconds: float = 0.0, workdir: str = "") -> str:
        return rollout_steps(target, policy, canary, namespace, isvc, replay, interval_seconds, workdir).outputs["Output"]

    return rollout_pipeline

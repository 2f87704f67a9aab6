"""The train pipeline: training set for a strategy -> train -> evaluate against the champion -> register.

Every model is registered in MLflow with its verdict (components.training.workflow's one
rule): the first model that passes the gate becomes ``champion``, a later passing one
``challenger``; one that fails gets no alias (its verdict is in the dashboard).

>>> p = build("local")
>>> p.name
'driftloop-train'
>>> sorted(p.component_spec.inputs)
['cohort', 'decision_key', 'end', 'policy', 'source', 'strategy', 'window', 'workdir']
"""

# No "from __future__ import annotations": KFP reads the pipeline signature's real types.
from collections.abc import Callable
from typing import Any

from kfp import dsl

from components.kfp.training import build_training_data, evaluate, register, train
from pipelines.platform import compute_step, pure, server_step, time_dependent


def training_steps(target: str, policy: Any, strategy: Any, end: Any, window: Any, cohort: Any, source: Any, workdir: Any,
                   decision_key: Any = "", then: Callable[[Any], Any] | None = None) -> tuple[Any, Any]:
    """Add training, evaluation and registration; return (evaluate task, register task).

    ``window`` is the training window's length ("48h", "" = the policy action's); ``end`` its end.

    ``then(register_task)`` adds steps that run only when the registration made a new
    ``challenger`` (the canary rollout): not for a first champion, nor for a gate failure.
    """
    # An empty end means "the newest labelled data": never cached.
    data = server_step(time_dependent(build_training_data(policy=policy, strategy=strategy, end=end, window=window, cohort=cohort,
                                                          source=source, workdir=workdir)), target, feast=True)
    data.set_display_name("training set")
    fit = compute_step(pure(train(policy=policy, train_data=data.outputs["train_data"])), target, cpu="4", memory="8Gi")  # seeded: same rows, same model
    fit.set_display_name("train challenger")
    gate = evaluate(policy=policy, model=fit.outputs["model"], holdout=data.outputs["holdout"], workdir=workdir)
    server_step(time_dependent(gate), target)  # the champion can change between runs
    gate.set_display_name("champion vs challenger")
    reg = register(policy=policy, model=fit.outputs["model"], train_data=data.outputs["train_data"], holdout=data.outputs["holdout"],
                   verdict=gate.outputs["verdict"], time_range=data.outputs["Output"], strategy=strategy, cohort=cohort,
                   decision_key=decision_key, workdir=workdir)
    server_step(time_dependent(reg), target)
    reg.set_display_name("register and alias")
    if then is not None:
        with dsl.If(reg.outputs["Output"] == "challenger", name="new-challenger"):
            then(reg)
    return gate, reg


def build(target: str = "cluster") -> Any:
    """The train pipeline for ``target`` ("cluster" or "local")."""

    @dsl.pipeline(name="driftloop-train", description="Build a training set for a strategy, train a challenger and gate it against the champion.")
    def train_pipeline(policy: str, strategy: str = "full", end: str = "", window: str = "", cohort: str = "", source: str = "", workdir: str = "",
                       decision_key: str = "") -> bool:
        gate, _ = training_steps(target, policy, strategy, end, window, cohort, source, workdir, decision_key)
        return gate.outputs["Output"]

    return train_pipeline

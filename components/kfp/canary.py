"""The canary step's adapter: KFP parameters in, :func:`serving.canary.rollout.roll_out` out.

KFP passes "" for an unset parameter; this maps those to None and calls the one rollout
entry point (the CLI and the demo call it too). Errors found before any traffic moves are
ConfigErrors naming the fix (see tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.errors import ConfigError
from components.settings import Settings

if TYPE_CHECKING:

    from components.policy import Policy


def canary_rollout(policy: Policy, settings: Settings, backend: str, namespace: str = "default", isvc: str = "", replay: str = "",
                   interval_seconds: float = 0.0, on_step: Any = None) -> Any:
    """Roll the challenger out by the policy's canary steps; promote or roll back (a RolloutResult).

    ``backend`` "kubernetes" patches the InferenceService and reads Prometheus; "local"
    starts the champion, challenger and router here and replays ``replay`` (a parquet path
    or ``scenario:<name>``) through it as live traffic with delayed labels.
    """
    from serving.canary.rollout import roll_out

    if backend == "local" and not replay:  # an unattended step has no users sending requests
        raise ConfigError("a local canary needs traffic", fix="pass replay=<parquet path or scenario:<name>> with features and labels")
    return roll_out(policy, settings, backend, namespace=namespace or "default", isvc=isvc, replay=replay or None,
                    interval_seconds=interval_seconds, on_step=on_step, actor="kfp")


def rollout_markdown(result: Any) -> str:
    """The canary's outcome and one line per analysed step, as Markdown (``RolloutResult.to_markdown``)."""
    return str(result.to_markdown())

"""The canary step's helpers: roll the challenger out on Kubernetes or locally with replayed traffic.

Errors found before any traffic moves are ConfigErrors naming the fix (see tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.errors import ConfigError
from components.kfp.windows import read_source
from components.settings import Settings

if TYPE_CHECKING:

    from components.policy import Policy


def canary_rollout(policy: Policy, settings: Settings, backend: str, namespace: str = "default", isvc: str = "", replay: str = "",
                   interval_seconds: float = 0.0, on_step: Any = None) -> Any:
    """Roll the challenger out by the policy's canary steps (serving.canary); promote or roll back.

    ``backend`` "kubernetes" patches the InferenceService and reads Prometheus; "local"
    starts the champion, challenger and router here and replays ``replay`` (a parquet path
    or ``scenario:<name>``) through it as live traffic with delayed labels.
    """
    import logging

    from components.registry import ModelRegistry
    from serving.canary.controller import run_rollout
    from serving.prometheus import source_from_settings

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would bury the step lines
    if interval_seconds > 0:
        policy = policy.model_copy(update={"rollout": policy.rollout.model_copy(update={"interval_seconds": interval_seconds})})
    registry = ModelRegistry(settings)
    log_dir = settings.workdir / "predictions"
    if backend == "kubernetes":
        from serving.canary.k8s import KubernetesBackend

        if not settings.prometheus_url:
            raise ConfigError("the Kubernetes canary reads metrics from Prometheus, and none is configured", fix="set DRIFTLOOP_PROMETHEUS_URL (the driftloop-settings ConfigMap)")
        k8s = KubernetesBackend(isvc or policy.model, namespace)
        return run_rollout(policy, k8s, source_from_settings(settings.prometheus_url, k8s.metrics_targets), registry, on_step=on_step, actor="kfp")
    if backend != "local":
        raise ConfigError(f"unknown canary backend {backend!r}", fix="use kubernetes or local")
    if not replay:
        raise ConfigError("a local canary needs traffic", fix="pass replay=<parquet path or scenario:<name>> with features and labels")
    from serving.canary.local import LocalBackend
    from serving.traffic import ReplayTraffic

    frame = read_source(replay, policy)
    columns = [*policy.all_features, *(c for c in (policy.entity, policy.segment_column) if c and c in frame.columns and c not in policy.all_features)]
    local = LocalBackend(policy.model, f"models:/{policy.model}@champion", tracking_uri=settings.mlflow_tracking_uri, log_dir=log_dir,
                         work_dir=settings.workdir / "servers")
    traffic = None
    try:
        local.start()
        traffic = ReplayTraffic(local.url, policy.model, frame, columns, label=policy.label).start()
        return run_rollout(policy, local, source_from_settings(settings.prometheus_url, local.metrics_targets), registry,
                           labels=traffic.labels, log_dir=log_dir, on_step=on_step, actor="kfp")
    finally:
        if traffic is not None:
            traffic.stop()
        local.close()


def rollout_markdown(result: Any) -> str:
    """The canary's outcome and one line per analysed step, as Markdown."""
    lines = [f"# Canary: {result.outcome.replace('_', ' ')}", "", f"{result.reason}", "",
             f"champion v{result.champion_version}, challenger v{result.challenger_version}", "", "| traffic | decision | reasons |", "| --- | --- | --- |"]
    lines += [f"| {s['percent']}% | {s['decision']} | {'; '.join(s['reasons']) or '-'} |" for s in result.steps]
    return "\n".join(lines) + "\n"

"""The one rollout entry point: ``driftloop rollout``, the KFP canary step and the demo call :func:`roll_out`.

It wires what :func:`serving.canary.controller.run_rollout` drives, in a fixed order:

1. the policy (with an optional interval override) and the registry;
2. :func:`~serving.canary.controller.preflight`, before any process starts or any traffic
   moves (bad checks, an unknown challenger, labelled checks without labels, a Kubernetes
   backend without Prometheus are refused here);
3. the backend (``"local"``: champion and router processes started with the policy, so
   their request schema is the policy's; ``"kubernetes"``: the InferenceService; or a
   backend object the caller owns), the metrics source and the replayed traffic;
4. the controller's loop; then, whatever happened, the traffic stops and every process
   started here is closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.errors import ConfigError, DataError
from serving.canary.backends import TrafficBackend
from serving.canary.controller import Registry, RolloutResult, preflight, run_rollout

if TYPE_CHECKING:
    import pandas as pd

    from components.policy import Policy
    from components.settings import Settings
    from serving.prometheus import MetricsSource

BACKENDS = ("local", "kubernetes")


def with_interval(policy: Policy, interval_seconds: float | None) -> Policy:
    """``policy`` with ``rollout.interval_seconds`` replaced (None or <= 0 keeps it).

    >>> from components.policy import load_policy
    >>> with_interval(load_policy("churn"), 2.5).rollout.interval_seconds
    2.5
    """
    if not interval_seconds or interval_seconds <= 0:
        return policy
    return policy.model_copy(update={"rollout": policy.rollout.model_copy(update={"interval_seconds": interval_seconds})})


def replay_frame(policy: Policy, replay: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Replay rows (a frame, a parquet/CSV path or ``scenario:<name>[:rows]``) with every column the replay needs.

    >>> import pandas as pd
    >>> from components.policy import load_policy
    >>> replay_frame(load_policy("churn"), pd.DataFrame({"tenure_months": [3]}))
    Traceback (most recent call last):
    ...
    components.errors.DataError: replay data lacks columns ['monthly_charges', 'total_charges', 'support_calls', 'num_products', 'contract', 'region', 'churned'] (fix: replay the scenario's data: scenario:<name> or driftloop scenario <name>)
    """
    import pandas as pd

    from components.tables import read_table

    frame = replay if isinstance(replay, pd.DataFrame) else read_table(replay, "replay")  # rows are replayed in order; no time needed
    missing = [c for c in [*policy.all_features, policy.label] if c not in frame.columns]
    if missing:
        where = "" if isinstance(replay, pd.DataFrame) else f" {str(replay)!r}"
        raise DataError(f"replay data{where} lacks columns {missing}", fix="replay the scenario's data: scenario:<name> or driftloop scenario <name>")
    return frame


def replay_traffic(url: str, policy: Policy, frame: pd.DataFrame, **kw: Any) -> Any:
    """A :class:`serving.traffic.ReplayTraffic` of ``frame``: the policy's features plus its entity
    and segment (logged, not modelled) as instances, the label kept per request id."""
    from serving.traffic import ReplayTraffic

    extra = [c for c in (policy.entity, policy.segment_column) if c and c in frame.columns and c not in policy.all_features]
    return ReplayTraffic(url, policy.model, frame, [*policy.all_features, *extra], label=policy.label, **kw)


def _labels_source(labels: Any) -> Callable[[], pd.DataFrame] | None:
    """Delayed labels as the callable the controller polls."""
    if labels is None or callable(labels):
        return labels
    import pandas as pd

    if isinstance(labels, pd.DataFrame):
        frame = labels
    else:
        from components.tables import read_table

        frame = read_table(labels, "labels")
    return lambda: frame


def with_settings(policy: Policy, settings: Settings) -> Policy:
    """``policy`` with the rollout fields the settings override (a dev overlay's shorter canary).

    >>> from components.policy import load_policy
    >>> from components.settings import Settings
    >>> s = Settings.from_env({"DRIFTLOOP_ROLLOUT_STEPS": "50,100", "DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS": "10"})
    >>> with_settings(load_policy("churn"), s).rollout.steps
    [50, 100]
    """
    overrides = settings.rollout_overrides()
    if not overrides:
        return policy
    return policy.model_copy(update={"rollout": policy.rollout.model_copy(update=overrides)})


def roll_out(
    policy: Policy,
    settings: Settings,
    backend: str | TrafficBackend = "local",
    *,
    challenger_uri: str | None = None,
    replay: str | Path | pd.DataFrame | None = None,
    labels: Any = None,
    log_dir: str | Path | None = None,
    namespace: str = "default",
    isvc: str = "",
    router_port: int | None = None,
    interval_seconds: float | None = None,
    registry: Registry | None = None,
    metrics_source: MetricsSource | None = None,
    on_step: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    actor: str = "driftloop-rollout",
    clock: Callable[[], float] = time.time,
) -> RolloutResult:
    """Roll ``challenger_uri`` (default ``models:/<model>@challenger``) out by the policy's canary steps.

    ``backend``: ``"local"`` starts the champion and the router (``router_port``) here;
    ``"kubernetes"`` patches InferenceService ``isvc`` (default: the model) in
    ``namespace`` and reads ``settings.prometheus_url``; a :class:`TrafficBackend` object
    is used as it is and left running. ``replay`` (a frame, path or ``scenario:<name>``)
    is sent through the backend's ``url`` as live traffic whose labels feed the labelled
    checks; ``labels`` (a frame, a parquet/CSV path or a callable) are delayed labels by
    ``request_id``. ``log_dir`` is the prediction log (default ``<workdir>/predictions``).
    ``clock`` and ``sleep`` are the controller's (a replay's scaled clock drives both).

    Problems found before traffic moves raise ConfigError/DataError/ServiceUnavailable
    with no process started; afterwards the result says ``promoted`` or ``rolled_back``.
    """
    say = on_step or (lambda line: None)
    # settings (DRIFTLOOP_ROLLOUT_*, e.g. the dev overlay) override the policy; an explicit interval wins over both
    policy = with_interval(with_settings(policy, settings), interval_seconds)
    if isinstance(backend, str) and backend not in BACKENDS:
        raise ConfigError(f"unknown canary backend {backend!r}", fix=f"use one of: {', '.join(BACKENDS)}")
    if backend == "kubernetes" and not settings.prometheus_url:
        raise ConfigError("the Kubernetes canary reads metrics from Prometheus, and none is configured",
                          fix="set DRIFTLOOP_PROMETHEUS_URL (the driftloop-settings ConfigMap)")
    if replay is not None and backend == "kubernetes":
        raise ConfigError("replayed traffic is for the local backend", fix="drop --replay: the InferenceService serves real traffic")
    if registry is None:
        from components.registry import ModelRegistry

        registry = ModelRegistry(settings)
    frame = replay_frame(policy, replay) if replay is not None else None
    labels_fn = _labels_source(labels)
    log_path = Path(log_dir) if log_dir else settings.workdir / "predictions"
    # On a cluster the prediction log only matters for labelled checks; a local backend always writes one.
    log_arg = log_path if (labels_fn is not None or frame is not None or backend != "kubernetes") else None
    challenger_uri = challenger_uri or f"models:/{policy.model}@challenger"
    preflight(policy, registry, challenger_uri, labels_fn if labels_fn is not None else frame, log_arg)

    with ExitStack() as cleanup:
        traffic_backend = _build_backend(policy, settings, backend, namespace, isvc, router_port, log_path, cleanup, say)
        if metrics_source is None:
            from serving.prometheus import source_from_settings

            metrics_source = source_from_settings(settings.prometheus_url, traffic_backend.metrics_targets)
        if frame is not None:
            logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would bury the step lines
            url = getattr(traffic_backend, "url", None)
            if url is None:
                raise ConfigError(f"the backend {type(traffic_backend).__name__} has no url to replay traffic through", fix="replay through a LocalBackend")
            traffic = replay_traffic(str(url), policy, frame).start()
            cleanup.callback(lambda: say(f"replayed {traffic.sent} requests, {traffic.failed} failed"))
            cleanup.callback(traffic.stop)
            labels_fn = labels_fn or traffic.labels
        return run_rollout(policy, traffic_backend, metrics_source, registry, challenger_uri=challenger_uri, labels=labels_fn,
                           log_dir=log_arg, sleep=sleep, clock=clock, on_step=say, actor=actor)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow exceptions


def _build_backend(policy: Policy, settings: Settings, backend: str | TrafficBackend, namespace: str, isvc: str,
                   router_port: int | None, log_dir: Path, cleanup: ExitStack, say: Callable[[str], None]) -> Any:
    """The traffic backend, started; a local one is closed by ``cleanup``."""
    if not isinstance(backend, str):
        return backend
    if backend == "kubernetes":
        from serving.canary.k8s import KubernetesBackend

        return KubernetesBackend(isvc or policy.model, namespace)
    import yaml

    from serving.canary.local import LocalBackend

    work_dir = settings.workdir / "servers"
    work_dir.mkdir(parents=True, exist_ok=True)
    # The servers validate requests against the policy being rolled out (its features), not a seed policy.
    policy_file = work_dir / f"{policy.model}-policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy.model_dump(mode="json", exclude_none=True), sort_keys=False))
    local = LocalBackend(policy.model, f"models:/{policy.model}@champion", tracking_uri=settings.mlflow_tracking_uri,
                         log_dir=log_dir, router_port=router_port, work_dir=work_dir, policy=str(policy_file))
    cleanup.callback(local.close)
    say("starting the champion and the router ...")
    local.start()
    say(f"router: {local.url}/v1/models/{policy.model}:predict")
    return local

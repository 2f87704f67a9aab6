"""The canary step's adapter: KFP parameters in, :func:`serving.canary.rollout.roll_out` out.

KFP passes "" for an unset parameter; this maps those to None and calls the one rollout
entry point (the CLI and the demo call it too). Errors found before any traffic moves are
ConfigErrors naming the fix (see tests).

On a cluster the labelled checks (accuracy, ctr) need delayed labels joined to the
prediction log. The log sink writes the log to the ``driftloop-prediction-log`` volume,
which the rollout step mounts at :data:`PREDICTION_LOG_DIR`; the labels come from the
shared label store (Feast's label log, PostgreSQL in production). That store knows
entity and event time, not request ids, so :func:`store_labels` joins each label to the
entity's latest logged prediction at or before the label's event time
(:func:`serving.prediction_log.join_labels` with ``on=(entity, time)``) and hands the
controller the request ids it joins by.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from components.errors import ConfigError
from components.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from components.policy import Policy

PREDICTION_LOG_PVC = "driftloop-prediction-log"  # manifests/base/log-sink.yaml
PREDICTION_LOG_DIR = "/var/lib/driftloop/prediction-log"  # where the sink and the rollout step mount it
LABEL_SOURCES = ("store", "none")


def store_labels(policy: Policy, settings: Settings, log_dir: str, since: Any, tolerance: str = "1h",
                 now: Callable[[], Any] | None = None) -> Callable[[], pd.DataFrame]:
    """Delayed labels by request id for the controller: label-store rows joined to the prediction log by entity and time.

    The callable reads labels known by "now" for events since ``since`` each time the
    controller polls, so labels that arrive during the rollout count.

    >>> import pandas as pd, tempfile
    >>> from components.policy import resolve_policy
    >>> poll = store_labels(resolve_policy("churn"), Settings.from_env({"DRIFTLOOP_WORKDIR": tempfile.mkdtemp()}), tempfile.mkdtemp(), pd.Timestamp.now(tz="UTC"))
    >>> poll().columns.tolist()
    ['request_id', 'churned']
    """
    import pandas as pd

    from serving.canary.label_source import store_label_source
    from serving.prediction_log import read_log

    clock = now or (lambda: pd.Timestamp.now(tz="UTC"))
    start = pd.Timestamp(since).to_pydatetime()
    return store_label_source(policy, settings, lambda: read_log(log_dir, policy.model, start=start),
                              lambda: pd.Timestamp(clock()).timestamp(), tolerance=tolerance)


def canary_rollout(policy: Policy, settings: Settings, backend: str, namespace: str = "default", isvc: str = "", replay: str = "",
                   interval_seconds: float = 0.0, on_step: Any = None, *, log_dir: str = "", labels: str = "store",
                   roll_out: Callable[..., Any] | None = None) -> Any:
    """Roll the challenger out by the policy's canary steps; promote or roll back (a RolloutResult).

    ``backend`` "kubernetes" patches the InferenceService and reads Prometheus; "local"
    starts the champion, challenger and router here and replays ``replay`` (a parquet path
    or ``scenario:<name>``) through it as live traffic with delayed labels. ``log_dir`` is
    the prediction log (on a cluster the mounted volume); ``labels`` "store" feeds the
    Kubernetes canary's labelled checks from the label store (:func:`store_labels`),
    "none" runs without labels. ``roll_out`` defaults to :func:`serving.canary.rollout.roll_out`.
    The monitor metrics (traffic, rollbacks) are pushed to the Pushgateway when one is set.
    """
    import pandas as pd

    if roll_out is None:
        from serving.canary.rollout import roll_out as default_roll_out

        roll_out = default_roll_out

    from components.metrics_push import push_rollout, push_rollout_start, push_traffic

    if backend == "local" and not replay:  # an unattended step has no users sending requests
        raise ConfigError("a local canary needs traffic", fix="pass replay=<parquet path or scenario:<name>> with features and labels")
    if labels not in LABEL_SOURCES:
        raise ConfigError(f"canary labels source {labels!r} is unknown", fix=f"use one of: {', '.join(LABEL_SOURCES)}")
    label_source = None
    if backend == "kubernetes" and labels == "store":
        label_source = store_labels(policy, settings, log_dir or str(settings.workdir / "predictions"), pd.Timestamp.now(tz="UTC"))
    def step(line: str) -> None:
        percent = step_percent(line)
        if percent is not None:  # the CanaryStuck alert watches the traffic between steps
            push_traffic(settings, policy.model, percent)
        if on_step is not None:
            on_step(line)

    push_rollout_start(settings, policy.model)  # the rollback alert's increase() needs the counter's 0 first
    result = roll_out(policy, settings, backend, namespace=namespace or "default", isvc=isvc, replay=replay or None,
                      interval_seconds=interval_seconds, on_step=step, actor="kfp", labels=label_source, log_dir=log_dir or None)
    push_rollout(settings, policy.model, result)
    return result


def step_percent(line: str) -> int | None:
    """The traffic percent of a controller step line (``serving.canary.controller.format_step``), else None.

    >>> step_percent("step 1/4 at 10%: hold - error_rate 0.034 > 0.01"), step_percent("promoted: all checks passed")
    (10, None)
    """
    import re

    found = re.match(r"step \d+/\d+ at (\d+)%:", line)
    return int(found.group(1)) if found else None


def rollout_markdown(result: Any) -> str:
    """The canary's outcome and one line per analysed step, as Markdown (``RolloutResult.to_markdown``)."""
    return str(result.to_markdown())

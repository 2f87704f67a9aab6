"""Where a pipeline runs: cluster-only settings applied in one place, so local runs stay plain.

``target="cluster"`` adds Kubernetes secrets (MLflow and Feast credentials as env), the
settings ConfigMap, CPU/memory limits and retries; ``target="local"`` keeps only what
``kfp.local`` honours, so the same pipeline function builds both.

>>> TARGETS
('cluster', 'local')
>>> check_target("local")
'local'
"""

from __future__ import annotations

from typing import Any, Literal

from components.errors import ConfigError

Target = Literal["cluster", "local"]
TARGETS: tuple[str, ...] = ("cluster", "local")

# Names the manifests create (manifests/ owns them); documented in docs/pipelines.md.
SETTINGS_CONFIG_MAP = "driftloop-settings"
MLFLOW_SECRET = "driftloop-mlflow"
FEAST_SECRET = "driftloop-feast"
SERVICE_ACCOUNT = "driftloop-pipeline"

_SETTINGS_ENV = {
    "DRIFTLOOP_MLFLOW_TRACKING_URI": "DRIFTLOOP_MLFLOW_TRACKING_URI",
    "DRIFTLOOP_MLFLOW_ARTIFACT_ROOT": "DRIFTLOOP_MLFLOW_ARTIFACT_ROOT",
    "DRIFTLOOP_FEAST_CONFIG": "DRIFTLOOP_FEAST_CONFIG",
    "DRIFTLOOP_PROMETHEUS_URL": "DRIFTLOOP_PROMETHEUS_URL",
    "DRIFTLOOP_WORKDIR": "DRIFTLOOP_WORKDIR",
    "DRIFTLOOP_ROLLOUT_STEPS": "DRIFTLOOP_ROLLOUT_STEPS",
    "DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS": "DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS",
    "DRIFTLOOP_PUSHGATEWAY_URL": "DRIFTLOOP_PUSHGATEWAY_URL",
}
# Secrets (credentials in URLs), optional: without them the embedded defaults apply.
LEDGER_SECRET = "driftloop-ledger"  # key url: postgresql://... (the decision ledger every run shares)
WEBHOOK_SECRET = "driftloop-webhook"  # key url: the Slack-compatible webhook the decide step posts to
PREDICTION_LOG_PVC = "driftloop-prediction-log"  # manifests/base/log-sink.yaml
_MLFLOW_ENV = {
    "username": "MLFLOW_TRACKING_USERNAME",
    "password": "MLFLOW_TRACKING_PASSWORD",
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
}
_FEAST_ENV = {"registry_url": "DRIFTLOOP_FEAST_REGISTRY_URL", "redis_url": "DRIFTLOOP_FEAST_REDIS", "offline_url": "DRIFTLOOP_FEAST_OFFLINE_URL"}


def check_target(target: str) -> str:
    """Return ``target`` or raise a ConfigError naming the choices."""
    if target not in TARGETS:
        raise ConfigError(f"unknown pipeline target {target!r}", fix=f"use one of {', '.join(TARGETS)}")
    return target


def pure(task: Any) -> Any:
    """A step whose output depends only on its inputs: cached."""
    task.set_caching_options(True)
    return task


def time_dependent(task: Any) -> Any:
    """A step that reads 'now' or mutable state (latest data, registry, ledger): never cached."""
    task.set_caching_options(False)
    return task


def server_step(task: Any, target: str, *, cpu: str = "1", memory: str = "2Gi", feast: bool = False, retries: int = 2) -> Any:
    """A step that talks to servers (MLflow, Feast, KServe): retried; on a cluster gets env and limits."""
    if check_target(target) == "local":
        return task  # kfp.local: the task inherits this process's env; no pods, no limits
    from kfp import kubernetes

    if retries:
        task.set_retry(num_retries=retries, backoff_duration="30s", backoff_factor=2.0, backoff_max_duration="600s")
    task.set_cpu_limit(cpu)
    task.set_memory_limit(memory)
    kubernetes.use_config_map_as_env(task, config_map_name=SETTINGS_CONFIG_MAP, config_map_key_to_env=_SETTINGS_ENV, optional=True)
    # MLflow's own default store as well, for code paths that use the global tracking URI.
    kubernetes.use_config_map_as_env(task, config_map_name=SETTINGS_CONFIG_MAP, config_map_key_to_env={"DRIFTLOOP_MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI"}, optional=True)
    kubernetes.use_secret_as_env(task, secret_name=MLFLOW_SECRET, secret_key_to_env=_MLFLOW_ENV, optional=True)
    kubernetes.use_secret_as_env(task, secret_name=LEDGER_SECRET, secret_key_to_env={"url": "DRIFTLOOP_LEDGER_URL"}, optional=True)
    kubernetes.use_secret_as_env(task, secret_name=WEBHOOK_SECRET, secret_key_to_env={"url": "DRIFTLOOP_WEBHOOK_URL"}, optional=True)
    if feast:
        kubernetes.use_secret_as_env(task, secret_name=FEAST_SECRET, secret_key_to_env=_FEAST_ENV, optional=True)
    return task


def prediction_log_step(task: Any, target: str, mount_path: str = "/var/lib/driftloop/prediction-log") -> Any:
    """A step that reads the prediction log: on a cluster it mounts the log sink's volume at ``mount_path``."""
    if check_target(target) == "cluster":
        from kfp import kubernetes

        kubernetes.mount_pvc(task, pvc_name=PREDICTION_LOG_PVC, mount_path=mount_path)
    return task


def compute_step(task: Any, target: str, *, cpu: str = "2", memory: str = "4Gi") -> Any:
    """A CPU-bound step (training, drift tests): resource limits on a cluster, nothing locally."""
    if check_target(target) == "cluster":
        task.set_cpu_limit(cpu)
        task.set_memory_limit(memory)
    return task

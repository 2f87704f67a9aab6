"""``driftloop rollout``: roll the challenger out by canary steps; promote or roll back.

Prints one line per analysis step. Exit code 0 when promoted, 1 when rolled back, 2 for
a problem found before traffic moved (bad policy, unknown challenger, server down).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.command()
@click.option("--policy", "policy_path", required=True, help="Policy YAML file, or a seed policy name.")
@click.option("--backend", "backend_kind", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True)
@click.option("--challenger", "challenger_uri", default=None, help="Challenger URI (default models:/<model>@challenger).")
@click.option("--namespace", default="default", show_default=True, help="Kubernetes: the InferenceService's namespace.")
@click.option("--isvc", default=None, help="Kubernetes: InferenceService name (default: the policy's model).")
@click.option("--router-port", default=None, type=int, help="Local: port of the traffic router clients call.")
@click.option("--replay", "replay_path", default=None, type=click.Path(path_type=Path), help="Local: replay this parquet/CSV (features + label) through the router as live traffic with delayed labels.")
@click.option("--labels", "labels_path", default=None, type=click.Path(path_type=Path), help="Delayed labels: parquet/CSV with request_id and the policy's label.")
@click.option("--log-dir", default=None, type=click.Path(path_type=Path), help="Prediction log directory (default: <workdir>/predictions).")
@click.option("--interval", default=None, type=float, help="Override rollout.interval_seconds.")
@click.option("--out", "out_path", default=None, type=click.Path(path_type=Path), help="Write the RolloutResult as JSON here.")
@click.option("--report", "report_path", default=None, type=click.Path(path_type=Path), help="Write a self-contained HTML chart of the steps here.")
def rollout(policy_path: str, backend_kind: str, challenger_uri: str | None, namespace: str, isvc: str | None, router_port: int | None,
            replay_path: Path | None, labels_path: Path | None, log_dir: Path | None, interval: float | None, out_path: Path | None,
            report_path: Path | None) -> None:
    """Roll the challenger out by canary steps; promote or roll back."""
    from components.errors import ConfigError
    from components.policy import load_policy
    from components.registry import ModelRegistry
    from components.settings import Settings
    from serving.canary.controller import preflight, run_rollout
    from serving.prometheus import source_from_settings

    policy = load_policy(policy_path)
    if interval is not None:
        policy = policy.model_copy(update={"rollout": policy.rollout.model_copy(update={"interval_seconds": interval})})
    settings = Settings.from_env()
    registry = ModelRegistry(settings)
    log_dir = log_dir or settings.workdir / "predictions"
    labels = _file_labels(labels_path) if labels_path else None
    traffic = None
    backend: Any
    if backend_kind == "kubernetes":
        from serving.canary.k8s import KubernetesBackend

        if not settings.prometheus_url:
            raise ConfigError("the Kubernetes backend reads metrics from Prometheus, and none is configured", fix="set DRIFTLOOP_PROMETHEUS_URL")
        backend = KubernetesBackend(isvc or policy.model, namespace)
        log_dir_arg = log_dir if labels else None
    else:
        from serving.canary.local import LocalBackend

        backend = LocalBackend(policy.model, f"models:/{policy.model}@champion", tracking_uri=settings.mlflow_tracking_uri,
                               log_dir=log_dir, router_port=router_port, work_dir=settings.workdir / "servers", policy=policy_path)
        log_dir_arg = log_dir
    source = source_from_settings(settings.prometheus_url, backend.metrics_targets)
    # Fail on a bad challenger or missing labels before any process starts.
    preflight(policy, registry, challenger_uri or f"models:/{policy.model}@challenger", labels or replay_path, log_dir_arg)
    try:
        if backend_kind == "local":
            click.echo("starting the champion and the router ...")
            backend.start()
            click.echo(f"router: {backend.url}/v1/models/{policy.model}:predict")
            if replay_path is not None:
                traffic = _replay(backend.url, policy, replay_path)
                labels = labels or traffic.labels
        result = run_rollout(policy, backend, source, registry, challenger_uri=challenger_uri, labels=labels, log_dir=log_dir_arg,
                             on_step=click.echo)
    finally:
        if traffic is not None:
            traffic.stop()
            click.echo(f"replayed {len(traffic.results)} requests, {traffic.failures()} failed")
        if backend_kind == "local":
            backend.close()
    if out_path is not None:
        out_path.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    if report_path is not None:
        from serving.canary.report import write_rollout_report

        click.echo(f"report: {write_rollout_report(result, report_path)}")
    if result.outcome != "promoted":
        raise click.exceptions.Exit(1)


def _file_labels(path: Path) -> Any:
    from components.tables import read_table

    frame = read_table(path, "labels")
    return lambda: frame


def _replay(url: str, policy: Any, path: Path) -> Any:
    from components.errors import DataError
    from components.tables import read_table
    from serving.traffic import ReplayTraffic

    frame = read_table(path, "replay")
    missing = [c for c in [*policy.all_features, policy.label] if c not in frame.columns]
    if missing:
        raise DataError(f"replay data {str(path)!r} lacks columns {missing}", fix="use the scenario's data (driftloop scenario <name>)")
    extra = [c for c in (policy.entity, policy.segment_column) if c and c in frame.columns and c not in policy.all_features]
    return ReplayTraffic(url, policy.model, frame, [*policy.all_features, *extra], label=policy.label).start()

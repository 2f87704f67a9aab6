"""``driftloop rollout``: roll the challenger out by canary steps; promote or roll back.

A thin wrapper over :func:`serving.canary.rollout.roll_out` (the one entry point the KFP
canary step and the demo call too). Prints one line per analysis step. Exit code 0 when
promoted, 1 when rolled back, 2 for a problem found before traffic moved (bad policy,
unknown challenger, server down).
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option("--policy", "policy_path", required=True, help="Policy YAML file, or a seed policy name.")
@click.option("--backend", "backend_kind", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True)
@click.option("--challenger", "challenger_uri", default=None, help="Challenger URI (default models:/<model>@challenger).")
@click.option("--namespace", default="default", show_default=True, help="Kubernetes: the InferenceService's namespace.")
@click.option("--isvc", default=None, help="Kubernetes: InferenceService name (default: the policy's model).")
@click.option("--router-port", default=None, type=int, help="Local: port of the traffic router clients call.")
@click.option("--replay", "replay_path", default=None, help="Local: replay this parquet/CSV or scenario:<name> (features + label) through the router as live traffic with delayed labels.")
@click.option("--labels", "labels_path", default=None, type=click.Path(path_type=Path), help="Delayed labels: parquet/CSV with request_id and the policy's label.")
@click.option("--log-dir", default=None, type=click.Path(path_type=Path), help="Prediction log directory (default: <workdir>/predictions).")
@click.option("--interval", default=None, type=float, help="Override rollout.interval_seconds.")
@click.option("--out", "out_path", default=None, type=click.Path(path_type=Path), help="Write the RolloutResult as JSON here.")
@click.option("--report", "report_path", default=None, type=click.Path(path_type=Path), help="Write a self-contained HTML chart of the steps here.")
def rollout(policy_path: str, backend_kind: str, challenger_uri: str | None, namespace: str, isvc: str | None, router_port: int | None,
            replay_path: str | None, labels_path: Path | None, log_dir: Path | None, interval: float | None, out_path: Path | None,
            report_path: Path | None) -> None:
    """Roll the challenger out by canary steps; promote or roll back."""
    from components.policy import load_policy
    from components.settings import Settings
    from serving.canary.rollout import roll_out

    result = roll_out(load_policy(policy_path), Settings.from_env(), backend_kind, challenger_uri=challenger_uri, replay=replay_path,
                      labels=labels_path, log_dir=log_dir, namespace=namespace, isvc=isvc or "", router_port=router_port,
                      interval_seconds=interval, on_step=click.echo)
    if out_path is not None:
        out_path.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    if report_path is not None:
        from serving.canary.chart import write_rollout_report

        click.echo(f"report: {write_rollout_report(result, report_path)}")
    if result.outcome != "promoted":
        raise click.exceptions.Exit(1)

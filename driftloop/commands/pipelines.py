"""``driftloop compile | submit | schedule | run-local``: the Kubeflow Pipelines commands.

Only argument wiring lives here; the work is in :mod:`pipelines.compile`,
:mod:`pipelines.client` and :mod:`pipelines.local` (imported when a command runs).
"""

from __future__ import annotations

from pathlib import Path

import click

from components.errors import ConfigError
from pipelines import PIPELINES

PIPELINE_NAMES = tuple(PIPELINES)  # declared once, in pipelines/__init__.py


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("k=v", ...)`` as a dict; a pair without ``=`` is a ConfigError."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {pair!r} is not KEY=VALUE", fix="write e.g. --param current_end=2025-09-01")
        out[key] = value
    return out


def _checked_policy(policy: str) -> str:
    """Validate the policy (schema and feature service) and return its YAML text."""
    from pipelines.checks import check_policy

    return check_policy(policy)


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("pipelines/compiled"), show_default=True, help="Directory for <pipeline>.yaml files.")
@click.option("--target", type=click.Choice(["cluster", "local"]), default="cluster", show_default=True, help="cluster: secrets, limits, retries; local: plain.")
@click.option("--pipeline", "names", type=click.Choice(PIPELINE_NAMES), multiple=True, help="Compile only these (default: all).")
@click.option("--policy", default="", help="Also validate this policy (name or YAML path) against the schema and feature service.")
def compile_cmd(out_dir: Path, target: str, names: tuple[str, ...], policy: str) -> None:
    """Compile every pipeline to KFP IR YAML."""
    from pipelines.compile import compile_all

    if policy:
        _checked_policy(policy)
    for path in compile_all(out_dir, target=target, names=names or None):
        click.echo(f"wrote {path}")


_host = click.option("--host", envvar="KF_PIPELINES_ENDPOINT", default="", help="KFP API/UI URL (env KF_PIPELINES_ENDPOINT).")
_policy = click.option("--policy", required=True, help="Policy name (churn, fraud...) or path to a policy YAML.")
_experiment = click.option("--experiment", default="driftloop", show_default=True)
_sa = click.option("--service-account", default="driftloop-pipeline", show_default=True, help="Kubernetes service account the run's pods use.")
_param = click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Pipeline parameter (repeatable), e.g. current_end=2025-09-01.")


_version = click.option("--version-name", default="", help="Pipeline version name (default: driftloop version + YAML hash); an existing one is reused.")


@click.command()
@_host
@click.option("--policy", default="", help="Policy name (churn, fraud...) or path to a policy YAML; required unless --no-run.")
@click.option("--pipeline", type=click.Choice(PIPELINE_NAMES), default="monitor_and_retrain", show_default=True)
@click.option("--package", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None, help="Upload this compiled YAML instead of compiling.")
@click.option("--emergency", is_flag=True, help="Retrain now on the most recent labelled data (strategy emergency), without waiting for the schedule.")
@click.option("--no-run", is_flag=True, help="Only upload the pipeline version.")
@_version
@_param
@_experiment
@_sa
def submit(host: str, policy: str, pipeline: str, package: Path | None, emergency: bool, no_run: bool, version_name: str,
           params: tuple[str, ...], experiment: str, service_account: str) -> None:
    """Upload a pipeline version and start a run on Kubeflow Pipelines."""
    from components.policy import resolve_policy
    from pipelines.client import submit as submit_run

    if not policy and not no_run:
        raise ConfigError("submit needs --policy to start a run", fix="pass --policy churn (or a policy file), or --no-run to only upload")
    text = _checked_policy(policy) if policy else ""
    extra: dict[str, object] = dict(_params(params))
    if emergency:
        if pipeline != "monitor_and_retrain" or package is not None:
            raise ConfigError("--emergency applies to the monitor_and_retrain pipeline", fix="drop --pipeline/--package or use --pipeline monitor_and_retrain")
        extra["emergency"] = True
    run_name = f"{resolve_policy(text).model}-{pipeline}{'-emergency' if emergency else ''}" if text else ""
    done = submit_run(host, pipeline, text, extra, experiment=experiment, run_name=run_name, service_account=service_account,
                      package=package, version_name=version_name, run=not no_run)
    if no_run:
        click.echo(f"pipeline {done.pipeline_id} version {done.version_id}: {done.url}")
    else:
        click.echo(f"run {done.run_id} (pipeline {done.pipeline_id}, version {done.version_id}): {done.url}")


@click.command()
@_host
@_policy
@click.option("--pipeline", type=click.Choice(PIPELINE_NAMES), default="monitor_and_retrain", show_default=True)
@click.option("--cron", default="", help="Override the policy's schedule (5-field cron).")
@_version
@_param
@_experiment
@_sa
def schedule(host: str, policy: str, pipeline: str, cron: str, version_name: str, params: tuple[str, ...], experiment: str, service_account: str) -> None:
    """Create (or replace) a recurring run on Kubeflow Pipelines from the policy's cron."""
    from components.policy import resolve_policy
    from pipelines.client import schedule as schedule_run

    text = _checked_policy(policy)
    pol = resolve_policy(text)
    cron = cron or pol.schedule or ""
    if not cron:
        raise ConfigError(f"policy {pol.model!r} has no schedule", fix="add 'schedule: \"0 6 1 * *\"' to the policy or pass --cron")
    done = schedule_run(host, pipeline, text, cron, _params(params), experiment=experiment, name=f"{pol.model}-{pipeline}",
                        service_account=service_account, version_name=version_name)
    click.echo(f"recurring run {done.recurring_run_id} on '{cron}' (pipeline {done.pipeline_id}, version {done.version_id}): {done.url}")


@click.command()
@_policy
@click.option("--pipeline", type=click.Choice(PIPELINE_NAMES), default="monitor", show_default=True)
@click.option("--source", default="", help="Parquet file or scenario:<name>[:rows]; empty: the Feast feature store.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path(".driftloop"), show_default=True)
@_param
def run_local(policy: str, pipeline: str, source: str, workdir: Path, params: tuple[str, ...]) -> None:
    """Run a whole pipeline on this machine with kfp.local."""
    from pipelines.local import run_pipeline

    text = _checked_policy(policy)
    result = run_pipeline(pipeline, text, workdir=workdir, source=source, params=_params(params), progress=True)
    click.echo(f"{pipeline}: {result.state} in {result.seconds:.1f}s; outputs under {result.pipeline_root}")
    for line in result.summary():
        click.echo(f"  {line}")

"""``driftloop registry list|promote|rollback|history|reconcile --model NAME``: inspect, move and repair aliases."""

from __future__ import annotations

from pathlib import Path

import click

_WORKDIR = click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Work directory (default: DRIFTLOOP_WORKDIR or .driftloop).")
_MODEL = click.option("--model", required=True, help="Registered model name (the policy's model).")
_ACTOR = click.option("--actor", default="driftloop-cli", show_default=True, help="Who moves the alias (recorded).")
_REASON = click.option("--reason", required=True, help="Why (recorded in the audit trail).")


def _registry(workdir: Path | None):  # type: ignore[no-untyped-def]
    from components.registry import ModelRegistry
    from components.training.workflow import quiet_ml_logging
    from driftloop.commands.train import settings_for

    quiet_ml_logging()
    return ModelRegistry(settings_for(workdir))


@click.group()
def registry() -> None:
    """List versions, promote the challenger, roll back, show the alias history."""


@registry.command("list")
@_MODEL
@_WORKDIR
def list_versions(model: str, workdir: Path | None) -> None:
    """Every version with its aliases, window, strategy and baseline metric."""
    from rich.console import Console
    from rich.table import Table

    versions = _registry(workdir).versions(model)
    if not versions:
        click.echo(f"no versions of {model!r}")
        return
    table = Table("version", "aliases", "strategy", "window", "decision", "gate", "baseline auc", "created")
    for v in versions:
        auc = v.metrics.get("baseline.auc")
        table.add_row(str(v.version), ",".join(v.aliases), v.params.get("strategy", ""), v.tags.get("driftloop.window", ""), v.params.get("decision_id", ""),
                      v.tags.get("driftloop.gate_passed", ""), f"{auc:.4f}" if auc is not None else "", v.created[:19])
    Console(width=200).print(table)


@registry.command()
@_MODEL
@click.option("--version", type=int, default=None, help="Version to promote (default: the challenger).")
@_ACTOR
@_REASON
@_WORKDIR
def promote(model: str, version: int | None, actor: str, reason: str, workdir: Path | None) -> None:
    """Make a version (default: the challenger) the champion."""
    info = _registry(workdir).promote(model, version, actor=actor, reason=reason)
    click.echo(f"{model}: champion is now version {info.version}")


@registry.command()
@_MODEL
@_ACTOR
@_REASON
@_WORKDIR
def rollback(model: str, actor: str, reason: str, workdir: Path | None) -> None:
    """Drop the challenger; with none, restore the previous champion."""
    champion = _registry(workdir).rollback(model, actor=actor, reason=reason)
    click.echo(f"{model}: rolled back; champion is version {champion.version if champion else 'none'}")


@registry.command()
@_MODEL
@_WORKDIR
def history(model: str, workdir: Path | None) -> None:
    """Every alias move: when, what, who and why."""
    events = _registry(workdir).history(model)
    if not events:
        click.echo(f"no alias history for {model!r}")
        return
    for e in events:
        previous = f" (was {e['previous']})" if e["previous"] is not None else ""
        click.echo(f"{e['at'][:19]}  {e['event']:<14} {e['alias']:<10} -> {e['version'] if e['version'] is not None else '-'}{previous}  by {e['actor']}: {e['reason']}")


@registry.command()
@_MODEL
@click.option("--state-file", type=click.Path(path_type=Path), default=None,
              help="Local rollout record (default: <workdir>/servers/<model>-rollout.json when it exists).")
@click.option("--isvc", default=None, help="Read the rollout record from this InferenceService's driftloop.io/rollout annotation.")
@click.option("--namespace", default="default", show_default=True, help="The InferenceService's namespace.")
@_ACTOR
@_WORKDIR
def reconcile(model: str, state_file: Path | None, isvc: str | None, namespace: str, actor: str, workdir: Path | None) -> None:
    """Repair a half-done alias move from the audit trail and the service's rollout record."""
    from components.registry.reconcile import reconcile as repair
    from driftloop.commands.train import settings_for

    served = None
    if isvc:
        from serving.canary.k8s import KubernetesBackend

        record, _ = KubernetesBackend(isvc, namespace).read_state()
        served = record
    else:
        from serving.canary.state import FileState

        path = state_file or settings_for(workdir).workdir / "servers" / f"{model}-rollout.json"
        if state_file is not None or path.exists():
            served, _ = FileState(path).read_state()
    if served is not None and served.model != model:
        served = None  # another model's record
    if served is not None:
        click.echo(f"service: rollout of version {served.challenger} (champion {served.champion}) is {served.phase}")
    done = repair(_registry(workdir), model, {"phase": served.phase, "champion": served.champion, "challenger": served.challenger} if served else None,
                  actor=actor)
    for line in done:
        click.echo(f"{model}: {line}")
    if not done:
        click.echo(f"{model}: registry and service agree; nothing to repair")

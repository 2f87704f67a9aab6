"""``driftloop demo``: the whole loop on one machine, with a dashboard."""

from __future__ import annotations

from pathlib import Path

import click

from components.errors import DriftloopError

SCENARIOS = ["churn", "credit", "fraud", "recsys", "concept"]


@click.command()
@click.option("--scenario", type=click.Choice(SCENARIOS), default="churn", show_default=True, help="Seed scenario to replay.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path(".driftloop/demo"), show_default=True,
              help="Where data, MLflow, Feast, logs, summary.json and report.html go (emptied first).")
@click.option("--bad-challenger", is_flag=True, help="Make the first challenger fail 30% of requests: the canary rolls it back.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--keep", is_flag=True, help="Keep an existing work directory instead of starting afresh.")
def demo(scenario: str, workdir: Path, bad_challenger: bool, seed: int, keep: bool) -> None:
    """Generate data, train and serve a champion, replay traffic, monitor, retrain and roll out by canary."""
    import shutil

    from driftloop.demo import run_demo

    workdir = workdir.resolve()
    if workdir.exists() and not keep:
        if not (workdir / "summary.json").exists() and any(workdir.iterdir()):
            raise DriftloopError(f"{workdir} is not empty and holds no earlier demo", fix="choose another --workdir or empty it")
        shutil.rmtree(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DriftloopError(f"cannot create {workdir}: {exc.strerror}", fix="choose a writable --workdir") from None
    summary = run_demo(scenario, workdir, bad_challenger=bad_challenger, seed=seed)
    click.echo("")
    click.echo(f"driftloop demo: {scenario}, {len(summary['periods'])} periods in {summary['duration_s']} s, "
               f"{summary['requests']} requests ({summary['failed_requests']} failed)")
    for event in summary["events"]:
        click.echo(f"  {event['period']}: {event['action']} {event.get('strategy') or ''}".rstrip())
    for r in summary["rollouts"]:
        click.echo(f"  rollout v{r['from_version']} -> v{r['to_version']}: {r['outcome']} ({r['reason']})")
    click.echo(f"  final champion: v{summary['final_champion']}")
    click.echo(f"  dashboard: {workdir / 'report.html'}")
    click.echo(f"  summary:   {workdir / 'summary.json'}")

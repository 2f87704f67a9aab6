"""``driftloop demo``: the whole loop on one machine, with a dashboard.

The work directory is emptied before a run only when it is driftloop's own: it holds the
marker file :data:`MARKER` and nothing the marker does not list (the entries the last
run left). Anything else (a home directory, a project, a file added by hand) is refused.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "data").mkdir(), write_marker(folder)
>>> clearable(folder), (folder / "notes.txt").write_text("mine") > 0, clearable(folder)
(True, True, False)
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from components.errors import DriftloopError

SCENARIOS = ["churn", "credit", "fraud", "recsys", "concept"]
MARKER = ".driftloop-demo"  # JSON: {"tool": "driftloop demo", "entries": [top-level names the run made]}


def write_marker(workdir: Path) -> None:
    """Record that ``workdir`` is a driftloop demo directory and which top-level entries it holds now."""
    entries = sorted(p.name for p in workdir.iterdir() if p.name != MARKER)
    (workdir / MARKER).write_text(json.dumps({"tool": "driftloop demo", "entries": entries}))


def clearable(workdir: Path) -> bool:
    """True when ``workdir`` holds the marker and only entries the marker lists."""
    try:
        listed = set(json.loads((workdir / MARKER).read_text())["entries"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return {p.name for p in workdir.iterdir()} - {MARKER} <= listed


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
    if workdir.exists() and not workdir.is_dir():
        raise DriftloopError(f"--workdir {workdir} is a file", fix="choose a directory")
    if workdir.exists() and not keep and any(workdir.iterdir()):
        if not clearable(workdir):
            raise DriftloopError(f"--workdir {workdir} is not empty and is not a driftloop demo directory (no {MARKER} marker, or entries it does not list)",
                                 fix="choose another --workdir, empty this one yourself, or pass --keep to run in it without clearing")
        shutil.rmtree(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DriftloopError(f"cannot create {workdir}: {exc.strerror}", fix="choose a writable --workdir") from None
    write_marker(workdir)
    try:
        summary = run_demo(scenario, workdir, bad_challenger=bad_challenger, seed=seed)
    finally:
        write_marker(workdir)  # even after a failure, the next run may clear what this one made
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

"""``driftloop train --policy FILE``: build a training set, train, evaluate against the champion, register."""

from __future__ import annotations

import os
from pathlib import Path

import click


def settings_for(workdir: Path | None):  # type: ignore[no-untyped-def]
    """Settings from the environment, rooted at ``workdir`` when given (env URIs still win)."""
    from components.settings import Settings

    env = dict(os.environ)
    if workdir is not None:
        env["DRIFTLOOP_WORKDIR"] = str(workdir)
    return Settings.from_env(env)


@click.command()
@click.option("--policy", "policy_path", required=True, help="Policy YAML file or a seed policy name (churn, credit, ...).")
@click.option("--strategy", type=click.Choice(["full", "recent_window", "cohort", "emergency"]), default=None, help="Default: the policy's highest-priority retrain action.")
@click.option("--window", default=None, help="Training window ending at --end, e.g. 48h, 14d, 12M (default: from the policy action).")
@click.option("--cohort", default=None, help="Cohort value for --strategy cohort.")
@click.option("--data", "data_path", type=click.Path(path_type=Path), default=None, help="Parquet with the scenario's columns (default: the Feast training set).")
@click.option("--end", default=None, help="End of the training window, ISO timestamp in UTC (default: the newest row of --data, else now).")
@click.option("--decision-id", default=None, help="The monitor decision that triggered this retrain (makes retries idempotent).")
@click.option("--actor", default="driftloop-cli", show_default=True, help="Who is retraining (recorded with alias moves).")
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Work directory (default: DRIFTLOOP_WORKDIR or .driftloop).")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None, help="Write the verdict as a self-contained HTML page (plots per segment).")
def train(policy_path: str, strategy: str | None, window: str | None, cohort: str | None, data_path: Path | None, end: str | None, decision_id: str | None, actor: str, workdir: Path | None, report_path: Path | None) -> None:
    """Retrain a policy's model and register it; move `challenger` if the gate passes (`champion` if none)."""
    from components.training.workflow import PHASES, import_tensorflow_quietly, quiet_ml_logging

    quiet_ml_logging()
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from components.policy import load_policy
    from components.training.workflow import retrain

    policy = load_policy(policy_path)
    settings = settings_for(workdir)
    if policy.trainer.kind == "keras_mlp":
        import_tensorflow_quietly()
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"{policy.model}: starting", total=len(PHASES))

        def step(phase: str) -> None:
            bar.update(task, description=f"{policy.model}: {phase}", completed=PHASES.index(phase))

        result = retrain(policy, strategy, end, window=window, cohort=cohort, source=data_path, settings=settings, decision_id=decision_id, actor=actor, progress=step)
        bar.update(task, completed=len(PHASES))
    data, version = result.training, result.version
    click.echo(f"{policy.model}: strategy {data.strategy}, window {data.window}" + (f", cohort {data.cohort}" if data.cohort else "") + f", {len(data.train)} training / {len(data.holdout)} holdout rows")
    if result.reused:
        click.echo(f"already registered for this decision: {policy.model} version {version.version} (nothing retrained)")
        return
    verdict = result.verdict
    click.echo(f"gate ({verdict.metric}): {'PASSED' if verdict.passed else 'FAILED'}")
    for line in verdict.reasons:
        click.echo(f"  {line}")
    moved = f", alias {result.alias}" if result.alias else ", no alias moved"
    click.echo(f"registered {policy.model} version {version.version}{moved} ({settings.mlflow_tracking_uri})")
    if report_path is not None:
        from components.training.verdict_report import verdict_html

        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(verdict_html(verdict, title=f"{policy.model} version {version.version}: challenger vs champion"))
        click.echo(f"wrote {report_path}")
    t = result.timings
    click.echo(f"time: training set {t['training_set']:.1f}s, train {t['train']:.1f}s, evaluate {t['evaluate']:.1f}s, register {t['register']:.1f}s, total {t['total']:.1f}s")

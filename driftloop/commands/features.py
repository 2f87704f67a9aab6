"""``driftloop features apply|ingest|materialize|get|training-set``: wire components.features."""

from __future__ import annotations

from pathlib import Path

import click

from components.settings import Settings

_workdir = click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Work directory (default: $DRIFTLOOP_WORKDIR or .driftloop).")


def _settings(workdir: Path | None) -> Settings:
    settings = Settings.from_env()
    return settings.with_workdir(workdir) if workdir else settings


@click.group()
def features() -> None:
    """Apply, fill and query the Feast feature repo of a work directory."""
    import warnings

    # feast 0.47's SQLite config class trips a pydantic field-shadowing warning on import
    warnings.filterwarnings("ignore", message=r"Field name \"vector_", category=UserWarning)


@features.command("apply")
@_workdir
def apply_cmd(workdir: Path | None) -> None:
    """Render the repo into the work directory and register every definition."""
    from components.features import apply

    settings = _settings(workdir)
    names = apply(settings)
    click.echo(f"applied {len(names)} objects ({settings.feast_config} config) from {settings.workdir / 'feature_repo'}: {', '.join(names)}")


@features.command("ingest")
@click.argument("scenario")
@click.option("--append", is_flag=True, help="Add to the rows already ingested instead of replacing them.")
@_workdir
def ingest_cmd(scenario: str, append: bool, workdir: Path | None) -> None:
    """Copy <data_dir>/SCENARIO.parquet into the feature source and label log."""
    from components.features import ingest

    path = ingest(scenario, _settings(workdir), append=append)
    click.echo(f"ingested {scenario} into {path}")


@features.command("materialize")
@click.argument("scenario")
@click.option("--end", required=True, help="Load values up to this time (ISO, UTC).")
@click.option("--start", default=None, help="Load values from this time; omit for incremental.")
@_workdir
def materialize_cmd(scenario: str, end: str, start: str | None, workdir: Path | None) -> None:
    """Load feature values into the online store (incrementally without --start)."""
    from components.features import materialize, materialize_incremental

    settings = _settings(workdir)
    if start:
        materialize(scenario, start, end, settings)
    else:
        materialize_incremental(scenario, end, settings)
    click.echo(f"materialized {scenario} {'from ' + start + ' ' if start else 'incrementally '}up to {end}")


@features.command("get")
@click.argument("policy")
@click.argument("ids", nargs=-1, required=True, type=int)
@_workdir
def get_cmd(policy: str, ids: tuple[int, ...], workdir: Path | None) -> None:
    """Print the online features of entity IDS for POLICY (a name or YAML path)."""
    from components.features import online_features
    from components.policy import load_policy

    frame = online_features(load_policy(policy), ids, settings=_settings(workdir))
    click.echo(frame.to_string(index=False))


@features.command("training-set")
@click.argument("policy")
@click.option("--start", required=True, help="Window start (ISO, UTC), inclusive.")
@click.option("--end", required=True, help="Window end (ISO, UTC), exclusive.")
@click.option("--cohort", default=None, help="Keep one value of the policy's segment column.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write parquet here instead of printing a summary.")
@_workdir
def training_set_cmd(policy: str, start: str, end: str, cohort: str | None, out: Path | None, workdir: Path | None) -> None:
    """Build POLICY's point-in-time training set for a window."""
    from components.features import training_set
    from components.policy import load_policy

    pol = load_policy(policy)
    frame = training_set(pol, start, end, cohort=cohort, settings=_settings(workdir))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(out, index=False)
    click.echo(f"{len(frame)} rows, {frame[pol.label].mean():.3f} positive, {start}..{end}{' cohort ' + cohort if cohort else ''}" + (f" -> {out}" if out else ""))


@features.command("check")
@click.argument("view")
@click.option("--start", required=True, help="Batch start (ISO, UTC), inclusive.")
@click.option("--end", required=True, help="Batch end (ISO, UTC), exclusive.")
@click.option("--dry-run", is_flag=True, help="Only check: materialize nothing and tell no model.")
@click.option("--checks", type=click.Path(path_type=Path), default=None, help="Feature checks YAML (default: feature_checks.yaml in the feature repo).")
@click.option("--pushgateway", envvar="DRIFTLOOP_PUSHGATEWAY", default=None, help="Push the check's metrics to this Prometheus Pushgateway ($DRIFTLOOP_PUSHGATEWAY).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_workdir
def check_cmd(view: str, start: str, end: str, dry_run: bool, checks: Path | None, pushgateway: str | None, as_json: bool, workdir: Path | None) -> None:
    """Check feature view VIEW's batch [START, END) and materialize it unless a quality check blocks it.

    Exit code 1 when a quality check failed (the batch was blocked, or only reported with on_fail: warn).
    """
    from components.features.materialize_check import check_view, materialize_and_check

    settings = _settings(workdir)
    report = check_view(view, start, end, settings, checks) if dry_run else materialize_and_check(view, start, end, settings, checks)
    if pushgateway:
        from components.features.view_metrics import push_view_metrics

        push_view_metrics(report, pushgateway)
    click.echo(report.to_json() if as_json else "\n".join(report.lines() + ([] if dry_run or report.blocked else [f"  materialized {start}..{end}"])))
    if not report.passed:
        raise click.exceptions.Exit(1)

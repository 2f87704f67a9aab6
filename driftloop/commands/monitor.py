"""``driftloop monitor``: run a policy's monitors on two data files, print the decision, write the report.

Writes ``DIR/report.json`` (every test, statistic, threshold and verdict, plus the decision)
and ``DIR/report.html`` (self-contained, with plots). Posts the decision to the policy's
webhook when one is configured. Bad input is one line on stderr and exit code 2.

Data without a prediction column is scored with the registered model (``--model-version``,
default the champion), whose reference sample stands in for a missing ``--reference`` and
whose baseline metrics the performance monitors use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from components.errors import DataError


def _read_baseline(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read baseline metrics {str(path)!r}: {exc}", fix='pass JSON like {"overall": {"auc": 0.81}, "segments": {...}}') from None
    if not isinstance(raw, dict):
        raise DataError(f"baseline metrics {str(path)!r} must be a JSON object", fix='use {"overall": {...}, "segments": {...}}')
    return raw


@click.command()
@click.option("--policy", "policy_path", required=True, help="Policy YAML file, or a seed policy name (churn, credit, ...).")
@click.option("--reference", "reference_path", default=None, type=click.Path(path_type=Path),
              help="Reference data (parquet or CSV). Default: the registered model version's reference sample.")
@click.option("--current", "current_path", required=True, type=click.Path(path_type=Path), help="Current window (parquet or CSV).")
@click.option("--out", "out_dir", default="monitor-report", show_default=True, type=click.Path(path_type=Path), help="Directory for report.json and report.html.")
@click.option("--model-version", default=None,
              help="Model version (number or alias) the predictions came from; data without predictions is scored with it (default: champion).")
@click.option("--baseline", "baseline_path", default=None, type=click.Path(path_type=Path), help="JSON of the champion's baseline metrics (overall and per segment).")
@click.option("--notify/--no-notify", default=True, show_default=True, help="Post the decision to the webhook if one is configured.")
def monitor(policy_path: str, reference_path: Path | None, current_path: Path, out_dir: Path, model_version: str | None,
            baseline_path: Path | None, notify: bool) -> None:
    """Run a policy's monitors on reference and current data; print the decision."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from components.decision import Decision
    from components.monitor.engine import run_monitors
    from components.monitor.html import write_html
    from components.notify import notify as send
    from components.policy import load_policy
    from components.settings import Settings

    console = Console()
    policy = load_policy(policy_path)
    from components.tables import read_table

    reference = read_table(reference_path, "reference") if reference_path is not None else None
    current = read_table(current_path, "current")
    baseline = _read_baseline(baseline_path)
    settings = Settings.from_env()
    if reference is None or policy.prediction not in reference.columns or policy.prediction not in current.columns:
        reference, current, model_version, registered = _from_registry(policy, reference, current, model_version, settings, console)
        baseline = baseline if baseline is not None else registered

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"monitoring {policy.model}", total=len(policy.monitors))

        def advance(name: str) -> None:
            progress.update(task, advance=1, description=f"monitoring {policy.model}: {name} done")

        report = run_monitors(policy, reference, current, baseline=baseline, model_version=model_version, progress=advance)

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    if notify:
        record = send(policy, Decision.from_dict(report.decision), report_link=str(html_path.resolve()), settings=settings)
        report.notifications.append(record)
        if record["status"] == "failed":
            report.warnings.append(record["detail"])
    json_path.write_text(report.to_json())
    write_html(report, html_path)
    _print(console, report, json_path, html_path)


def _from_registry(policy: Any, reference: Any, current: Any, model_version: str | None, settings: Any, console: Any) -> tuple[Any, Any, str, dict[str, Any]]:
    """Fill what the files lack from the registered model: its reference sample, its predictions, its baseline.

    Returns (reference, current, resolved version number, baseline metrics).
    """
    from components.registry import CHAMPION, ModelRegistry

    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():  # do not create an empty store
        raise DataError(
            f"the data has no {policy.prediction!r} column (or no --reference) and there is no model registry at {uri}",
            fix="pass --reference and data with predictions, or set DRIFTLOOP_WORKDIR / MLFLOW_TRACKING_URI to where 'driftloop train' registered the model",
        )
    registry = ModelRegistry(settings)
    version = model_version or CHAMPION
    if not version.isdigit():
        info = registry.get(policy.model, version)
        if info is None:
            raise DataError(
                f"the data has no {policy.prediction!r} column (or no --reference) and model {policy.model!r} has no {version!r} version "
                f"in the registry at {settings.mlflow_tracking_uri}",
                fix=f"pass --reference and data with predictions, or train and promote a model first ('driftloop train --policy {policy.model}')",
            )
        version = str(info.version)
    console.print(f"using registered model {policy.model} v{version}", highlight=False)
    if reference is None:
        reference = registry.reference_sample(policy.model, version)
    missing = [f for f in (reference, current) if policy.prediction not in f.columns]
    if missing:
        model = registry.load(policy.model, version)
        reference, current = (f if policy.prediction in f.columns else f.assign(**{policy.prediction: model.predict(f[policy.all_features])})
                              for f in (reference, current))
    return reference, current, version, registry.baseline_metrics(policy.model, version)


def _print(console: Any, report: Any, json_path: Path, html_path: Path) -> None:
    from rich.table import Table

    d = report.decision
    style = {"retrain": "bold red", "alert": "bold yellow"}.get(d["action"], "bold green")
    extras = ", ".join(f"{k} {d[k]}" for k in ("strategy", "window", "cohort") if d.get(k))
    console.print(f"[{style}]decision: {d['action']}[/]" + (f" ({extras})" if extras else ""))
    for reason in d.get("reasons", []):
        console.print(f"  - {reason}", highlight=False, markup=False)
    table = Table(show_header=True, header_style="bold")
    for col in ("monitor", "type", "verdict", "summary"):
        table.add_column(col)
    for m in report.monitors:
        table.add_row(m["name"], m["type"], "[red]FIRED[/]" if m["fired"] else "[green]ok[/]", m.get("summary", ""))
    console.print(table)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(f"report: {json_path} and {html_path}", highlight=False)

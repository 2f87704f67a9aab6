"""``driftloop monitor``: run a policy's monitors on two data files, print the decision, write the report.

Writes ``DIR/report.json`` (every test, statistic, threshold and verdict, plus the decision)
and ``DIR/report.html`` (self-contained, with plots). Posts the decision to the policy's
webhook when one is configured. Bad input is one line on stderr and exit code 2.

Data without a prediction column is scored with the registered model (``--model-version``,
default the champion), whose reference sample stands in for a missing ``--reference`` and
whose baseline metrics the performance monitors use. The drift monitors run on the
version's registered reference profile (sorted columns and counts) when a version is named
or the reference comes from the registry; ``--profile FILE`` uses a profile saved earlier
with ``--save-profile FILE`` (its SHA-256 kept in ``FILE.sha256`` and checked), so repeated
runs against one reference neither read nor sort it again.
"""

from __future__ import annotations

import importlib
import json
import threading
from pathlib import Path
from typing import Any

import click

from components.errors import ConfigError, DataError


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
@click.option("--profile", "profile_path", default=None, type=click.Path(path_type=Path),
              help="Reference profile saved by --save-profile: the drift monitors use it instead of reading and sorting the reference.")
@click.option("--save-profile", "save_profile_path", default=None, type=click.Path(path_type=Path),
              help="Profile --reference once (sorted columns, counts), write it here (and its SHA-256 next to it) and use it.")
@click.option("--notify/--no-notify", default=True, show_default=True, help="Post the decision to the webhook if one is configured.")
def monitor(policy_path: str, reference_path: Path | None, current_path: Path, out_dir: Path, model_version: str | None,
            baseline_path: Path | None, profile_path: Path | None, save_profile_path: Path | None, notify: bool) -> None:
    """Run a policy's monitors on reference and current data; print the decision."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from components.decision import Decision
    from components.monitor.html import write_html
    from components.notify import notify as send
    from components.policy import load_policy
    from components.scoring import monitor_report, needs_registry
    from components.settings import Settings
    from components.tables import read_table

    # scipy.stats (the drift tests' p-values) takes ~1 s to import: load it while the files are
    # read (pyarrow releases the GIL), not after
    warm = threading.Thread(target=importlib.import_module, args=("scipy.stats",), daemon=True)
    warm.start()
    console = Console()
    policy = load_policy(policy_path)
    reference = read_table(reference_path, "reference") if reference_path is not None else None
    current = read_table(current_path, "current")
    settings = Settings.from_env()
    baseline = _read_baseline(baseline_path)
    profile = _profile(policy, reference, profile_path, save_profile_path, console)
    from_registry = needs_registry(policy, reference if profile is None else current, current)

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"monitoring {policy.model}", total=len(policy.monitors))

        def advance(name: str) -> None:
            progress.update(task, advance=1, description=f"monitoring {policy.model}: {name} done")

        # The one scoring rule (components.scoring), shared with the monitor pipeline's step.
        report = monitor_report(policy, reference, current, model_version, settings, baseline=baseline, progress=advance, profile=profile)
    if from_registry:
        console.print(f"using registered model {policy.model} v{report.model_version}", highlight=False)

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


def _profile(policy: Any, reference: Any, profile_path: Path | None, save_path: Path | None, console: Any) -> Any:
    """The reference profile to use: loaded from ``--profile`` (digest-checked) or built from ``--reference`` and saved."""
    from components.monitor.profile import ReferenceProfile, load_profile

    if profile_path is not None and save_path is not None:
        raise ConfigError("--profile and --save-profile are exclusive", fix="load a saved profile with --profile, or build one from --reference with --save-profile")
    if save_path is not None:
        if reference is None:
            raise ConfigError("--save-profile profiles the --reference window, and none was given", fix="pass --reference DATA with --save-profile FILE")
        save_path.parent.mkdir(parents=True, exist_ok=True)
        built = ReferenceProfile.build(policy, reference)
        digest = built.save(save_path)
        Path(f"{save_path}.sha256").write_text(digest + "\n")
        console.print(f"reference profile: {save_path} (sha256 {digest[:12]})", highlight=False)
        return built
    if profile_path is None:
        return None
    sidecar = Path(f"{profile_path}.sha256")
    return load_profile(profile_path, sidecar.read_text().strip() if sidecar.is_file() else None)


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

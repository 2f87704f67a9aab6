"""``driftloop scenario NAME --out DIR``: write a seed scenario's data as parquet."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Directory for <name>.parquet.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same data).")
@click.option("--rows", type=int, default=None, help="Rows to generate (default: the scenario's default).")
@click.option("--plot", is_flag=True, help="Also write <name>.html: label rate and feature means per period, onset marked.")
def scenario(names: tuple[str, ...], out_dir: Path, seed: int, rows: int | None, plot: bool) -> None:
    """Generate scenarios NAMES (churn, credit, fraud, recsys, concept, or all) into --out."""
    import pyarrow.parquet as pq
    from rich.console import Console
    from rich.progress import Progress

    from components.data.scenarios import SCENARIOS, get_spec, write_scenario

    todo = sorted(SCENARIOS) if "all" in names else list(names)
    specs = [get_spec(name) for name in todo]  # fail on a bad name before writing anything
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("generating", total=len(specs))
        for spec in specs:
            progress.update(task, description=f"generating {spec.name}")
            path = write_scenario(spec.name, out_dir, rows=rows, seed=seed)
            n = pq.ParquetFile(path).metadata.num_rows
            click.echo(
                f"wrote {path}: {n} rows, {_EVERY[spec.period]} {spec.start:%Y-%m-%d %H:%M}..{spec.end:%Y-%m-%d %H:%M} UTC, "
                f"drift onset {spec.onset:%Y-%m-%d %H:%M}"
            )
            if plot:
                import pandas as pd

                from components.data.plot import write_scenario_plot

                html = write_scenario_plot(pd.read_parquet(path), spec, path.with_suffix(".html"))
                click.echo(f"wrote {html}: label rate and feature means per {spec.period}")
            progress.advance(task)


_EVERY = {"month": "monthly", "day": "daily", "hour": "hourly"}

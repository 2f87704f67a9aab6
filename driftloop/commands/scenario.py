"""``driftloop scenario NAME --out DIR``: write a seed scenario's data as parquet."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Directory for <name>.parquet.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same data).")
@click.option("--rows", type=int, default=None, help="Rows to generate (default: the scenario's default).")
def scenario(names: tuple[str, ...], out_dir: Path, seed: int, rows: int | None) -> None:
    """Generate scenarios NAMES (churn, credit, fraud, recsys, concept, or all) into --out."""
    import pyarrow.parquet as pq

    from components.data.scenarios import SCENARIOS, get_spec, write_scenario

    todo = sorted(SCENARIOS) if "all" in names else list(names)
    specs = [get_spec(name) for name in todo]  # fail on a bad name before writing anything
    for spec in specs:
        path = write_scenario(spec.name, out_dir, rows=rows, seed=seed)
        n = pq.ParquetFile(path).metadata.num_rows
        click.echo(
            f"wrote {path}: {n} rows, {_EVERY[spec.period]} {spec.start:%Y-%m-%d %H:%M}..{spec.end:%Y-%m-%d %H:%M} UTC, "
            f"drift onset {spec.onset:%Y-%m-%d %H:%M}"
        )


_EVERY = {"month": "monthly", "day": "daily", "hour": "hourly"}

"""A work directory with scenario data ingested into an applied, materialized local Feast repo."""

from __future__ import annotations

import pandas as pd
import pytest

from components.data.scenarios import generate, write_scenario
from components.features import apply, ingest, materialize
from components.settings import Settings

ROWS = {"churn": 24 * 150, "credit": 6_000, "recsys": 4_000, "fraud": 6_000}


@pytest.fixture(scope="package")
def feast_local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, pd.DataFrame]]:
    """Settings of a work directory whose local Feast repo holds four scenarios (seed 5)."""
    settings = Settings(workdir=tmp_path_factory.mktemp("feast") / "work")
    apply(settings)
    raw = {}
    for name, rows in ROWS.items():
        write_scenario(name, settings.data_dir, rows=rows, seed=5)
        ingest(name, settings)
        raw[name] = generate(name, rows=rows, seed=5)
    materialize("churn", "2024-01-01", "2026-01-01", settings)
    materialize("recsys", "2025-05-01", "2025-07-01", settings)
    return settings, raw

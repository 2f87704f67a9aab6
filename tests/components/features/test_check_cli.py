"""``driftloop features check``: a readable report, exit code 1 on a failed quality check, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from components.data.scenarios import generate
from components.features import apply, ingest
from components.settings import Settings
from driftloop.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(workdir=tmp_path_factory.mktemp("fcheck") / "work")
    apply(settings)
    raw = generate("churn", rows=24 * 150, seed=2)
    raw.loc[raw["event_timestamp"] == pd.Timestamp("2025-03-01", tz="UTC"), "region"] = np.nan
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    raw.to_parquet(settings.data_dir / "churn.parquet", index=False)
    ingest("churn", settings)
    return settings.workdir


def test_clean_batch_exits_0_and_materializes(workdir, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", "check", "churn_features", "--start", "2025-02-01", "--end", "2025-03-01", "--workdir", str(workdir)]) == 0
    out = capsys.readouterr().out
    assert "quality passed" in out and "materialized 2025-02-01..2025-03-01" in out


def test_failed_batch_exits_1_and_names_the_check(workdir) -> None:
    from click.testing import CliRunner

    from driftloop.commands.features import features

    # click's runner: driftloop.cli.main does not pass a command's exit code on yet
    result = CliRunner().invoke(features, ["check", "churn_features", "--start", "2025-03-01", "--end", "2025-04-01", "--dry-run", "--json", "--workdir", str(workdir)])
    report = json.loads(result.output)
    assert result.exit_code == 1 and not report["passed"] and not report["blocked"]  # a dry run blocks nothing
    assert {"check": "null_share", "feature": "region"} in [{k: q[k] for k in ("check", "feature")} for q in report["quality"] if not q["passed"]]


def test_unknown_view_is_one_line(workdir, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", "check", "churn", "--start", "2025-03-01", "--end", "2025-04-01", "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: feature view 'churn' has no checks") and "churn_features" in err and "Traceback" not in err

"""The materialize_and_check pipeline: cluster build wiring, and a local run that blocks a broken batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from components.data.scenarios import generate
from components.features import apply, ingest
from components.settings import Settings
from pipelines.materialize_and_check import build


def _compile(tmp_path: Path, target: str) -> list[dict]:
    from kfp import compiler

    path = tmp_path / f"{target}.yaml"
    compiler.Compiler().compile(pipeline_func=build(target), package_path=str(path))
    return list(yaml.safe_load_all(path.read_text()))


@pytest.mark.unit
def test_cluster_build_reaches_feast_is_never_cached_and_retries(tmp_path: Path) -> None:
    spec, platform = _compile(tmp_path, "cluster")
    task = spec["root"]["dag"]["tasks"]["check-and-materialize"]
    assert task["cachingOptions"] == {} and task["retryPolicy"]["maxRetryCount"] == 2  # a retry re-checks the same window: idempotent
    executor = next(iter(platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()))
    assert "driftloop-feast" in {s["secretName"] for s in executor["secretAsEnv"]}
    assert len(_compile(tmp_path, "local")) == 1


@pytest.mark.integration
def test_local_run_blocks_a_broken_batch(tmp_path: Path) -> None:
    from pipelines.local import init_local, local_env, quiet_local_warnings

    settings = Settings(workdir=tmp_path / "work")
    apply(settings)
    raw = generate("churn", rows=24 * 150, seed=7)
    raw.loc[raw["event_timestamp"] == pd.Timestamp("2025-04-01", tz="UTC"), "support_calls"] = np.nan
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    raw.to_parquet(settings.data_dir / "churn.parquet", index=False)
    ingest("churn", settings)
    init_local(tmp_path / "kfp")
    with local_env(settings.workdir), quiet_local_warnings():
        blocked = build("local")(view="churn_features", start="2025-04-01", end="2025-05-01", workdir=str(settings.workdir))
        passed = build("local")(view="churn_features", start="2025-03-01", end="2025-04-01", workdir=str(settings.workdir))
    assert (blocked.output, passed.output) == ("blocked", "passed")
    report = (settings.workdir / "feature_views" / "churn_features" / "last_report.json").read_text()
    assert '"verdict": "passed"' in report

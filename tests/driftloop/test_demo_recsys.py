"""``driftloop demo --scenario recsys``: the casual cohort's specialist, end to end through the real CLI.

The recsys data's casual cohort clicks about a third less from 2025-06-10 on; the other
cohorts do not change. The demo must answer with a specialist trained on casual rows of
the recent window only, canaried on casual traffic only and promoted, while the global
champion keeps serving every other cohort. The test reads ``summary.json``, the
generated data and the demo's MLflow registry (embedded SQLite) afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]

@pytest.fixture(scope="module")
def recsys_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    workdir = tmp_path_factory.mktemp("recsys-demo")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DRIFTLOOP_WORKDIR", None)
    out = subprocess.run([sys.executable, "-m", "driftloop", "demo", "--scenario", "recsys", "--workdir", str(workdir), "--keep"],
                         capture_output=True, text=True, env=env, timeout=1500, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((workdir / "summary.json").read_text()), workdir


def _sprt(period: dict[str, Any], cohort: str) -> bool:
    """Whether the period's cohort_ctr SPRT accepted a drop for ``cohort``."""
    (monitor,) = [m for m in period["monitors"] if m["name"] == "cohort_ctr"]
    return cohort in monitor.get("fired_segments", [])


@pytest.mark.e2e
def test_the_casual_drop_gets_a_casual_specialist_trained_canaried_and_promoted_on_casual_only(recsys_demo) -> None:
    from components.policy import load_policy
    from components.registry import ModelRegistry
    from components.settings import Settings

    summary, workdir = recsys_demo
    policy = load_policy("recsys")
    periods = {p["period"]: p for p in summary["periods"]}
    retrains = [e for e in summary["events"] if e["action"] == "retrain"]
    assert all({"training_rows", "training_cohorts"} <= set(e) for e in retrains), retrains
    assert [(e["period"], e["strategy"], e["cohort"]) for e in retrains][-1] == ("06-10", "cohort", "casual"), retrains
    assert all(e["cohort"] is None for e in retrains if e["strategy"] != "cohort")
    spec = retrains[-1]

    # trained on casual rows of the recent window only: exactly the casual rows labelled in (end - 5d, end]
    start, end = pd.Timestamp(spec["training_window"]["start"]), pd.Timestamp(spec["training_window"]["end"])
    assert end == pd.Timestamp(periods["06-10"]["start"]) + pd.Timedelta(days=5) and end - start == pd.Timedelta(days=5)
    assert spec["training_cohorts"] == ["casual"] and spec["gate_passed"]
    data = pd.read_parquet(next((workdir / "data").glob("*.parquet")))
    ts, known = pd.to_datetime(data[policy.timestamp], utc=True), pd.to_datetime(data["label_timestamp"], utc=True)
    casual_in_window = (data["user_cohort"] == "casual") & (ts > start) & (ts <= end) & (known <= end)
    assert spec["training_rows"] + spec["holdout_rows"] == int(casual_in_window.sum())
    reference = ModelRegistry(Settings(workdir=workdir)).reference_sample(policy.model, spec["version"])
    assert set(reference["user_cohort"]) == {"casual"}
    assert pd.to_datetime(reference[policy.timestamp], utc=True).between(start, end, inclusive="right").all()

    # canaried on casual traffic only, then promoted
    assert all("cohort" in r and r["requests_by_cohort"] for r in summary["rollouts"])
    (canary,) = [r for r in summary["rollouts"] if r["cohort"] == "casual"]
    assert canary["to_version"] == spec["version"] and canary["outcome"] == "promoted", canary["reason"]
    arms = canary["requests_by_cohort"]
    assert set(arms["challenger"]) == {"casual"} and arms["challenger"]["casual"] > 0  # new and power: 0 requests to it
    assert arms["champion"]["casual"] > 0
    assert all(r["cohort"] is None for r in summary["rollouts"] if r is not canary)

    # the global champion is untouched: the period after serves casual with the specialist, everyone else as before
    during, after = periods["06-10"], periods["06-15"]
    assert after["model_version"] == during["model_version"] == summary["final_champion"]
    assert after["cohorts"]["casual"]["versions"] == {spec["version"]: after["cohorts"]["casual"]["rows"]}
    for cohort in ("new", "power"):
        assert after["cohorts"][cohort]["versions"] == {summary["final_champion"]: after["cohorts"][cohort]["rows"]}
        assert not _sprt(after, cohort) and not _sprt(during, cohort)
    trail = [e for e in summary["audit_trail"] if e.get("cohort") == "casual"]
    assert [(e["event"], e["alias"]) for e in trail][-2:] == [("set_challenger", "challenger-casual"), ("promote", "champion-casual")]


@pytest.mark.e2e
def test_the_casual_cohort_recovers_under_its_specialist(recsys_demo) -> None:
    summary, _ = recsys_demo
    periods = {p["period"]: p for p in summary["periods"]}
    before, during, after = periods["06-05"]["cohorts"]["casual"], periods["06-10"]["cohorts"]["casual"], periods["06-15"]["cohorts"]["casual"]
    assert during["ctr"] < 0.8 * before["ctr"], "the casual drop is in the data"
    assert _sprt(periods["06-10"], "casual"), "found by the cohort SPRT against the global reference"
    # under the specialist the casual cohort is monitored against its own reference: no alarm
    assert not _sprt(periods["06-15"], "casual") and not _sprt(periods["06-20"], "casual")
    # and its predicted click-through matches what casual users do again (the global model kept the old rate)
    gap = {name: abs(f["predicted_ctr"] - f["ctr"]) for name, f in (("during", during), ("after", after))}
    assert gap["after"] < 0.5 * gap["during"], gap

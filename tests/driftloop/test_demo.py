"""``driftloop demo``: plans cover each scenario's onset; the whole loop runs end to end.

The end-to-end test runs the real CLI on the churn scenario with ``--bad-challenger``: the
first challenger fails 30% of its requests and must be rolled back by the canary, a later
one must be promoted, and the dashboard must render in headless Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.data.scenarios import get_spec
from driftloop.demo import plan_for

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.unit
@pytest.mark.parametrize("scenario", ["churn", "credit", "fraud", "recsys", "concept"])
def test_every_plan_replays_its_onset_after_the_champion_window(scenario: str) -> None:
    plan, spec = plan_for(scenario), get_spec(scenario)
    onsets = [o for o in (spec.onset, getattr(spec, "onset2", None)) if o is not None]
    assert plan.train_end <= plan.periods[0], "the champion never sees replayed traffic"
    for onset in onsets:
        assert plan.periods[0] < onset < plan.periods[-1] + plan.period, "the drift happens during the replay"
    assert plan.periods[0] < onsets[0], "at least one quiet period before the drift"


@pytest.mark.unit
def test_unknown_scenario_is_a_one_line_error() -> None:
    out = subprocess.run([sys.executable, "-m", "driftloop", "demo", "--scenario", "weather"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Invalid value for '--scenario'" in out.stderr and "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def bad_challenger_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    workdir = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DRIFTLOOP_WORKDIR", None)
    out = subprocess.run([sys.executable, "-m", "driftloop", "demo", "--workdir", str(workdir), "--bad-challenger", "--keep"],
                         capture_output=True, text=True, env=env, timeout=1500, cwd=REPO)
    return out, workdir


@pytest.mark.e2e
def test_demo_detects_retrains_rolls_back_the_bad_challenger_and_promotes_a_good_one(bad_challenger_demo) -> None:
    out, workdir = bad_challenger_demo
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    periods = [p["period"] for p in summary["periods"]]
    assert periods == ["2025-05", "2025-06", "2025-07", "2025-08", "2025-09", "2025-10"]

    retrains = [e for e in summary["events"] if e["action"] == "retrain"]
    assert retrains, "the accuracy floor must fire after the price change"
    assert all(e["period"] >= "2025-07" for e in retrains), "no retrain before the onset (false alarm)"
    assert retrains[0]["period"] == "2025-07" and retrains[0]["strategy"] == "recent_window"
    assert any(r.startswith("accuracy_floor: accuracy 0.7") for r in retrains[0]["reasons"])

    rollouts = summary["rollouts"]
    assert rollouts and rollouts[0]["outcome"] == "rolled_back" and rollouts[0]["bad_challenger"]
    assert "error_rate" in rollouts[0]["reason"]
    promoted = [r for r in rollouts if r["outcome"] == "promoted"]
    assert promoted, f"a good challenger must be promoted: {[r['reason'] for r in rollouts]}"
    assert [s["percent"] for s in promoted[0]["steps"] if s["decision"] in ("advance", "promote")] == [10, 25, 50, 100]
    assert summary["final_champion"] == promoted[-1]["to_version"] != "1"

    # after the promotion the new champion serves and the accuracy floor holds again
    after = [p for p in summary["periods"] if p["model_version"] == summary["final_champion"]]
    assert after, "at least one period served by the promoted model"
    acc = [m["value"] for p in after for m in p["metrics"] if m["metric"] == "accuracy" and m["segment"] is None]
    assert acc and min(acc) >= 0.85

    # the audit trail says who moved the aliases and why
    trail = summary["audit_trail"]
    assert any(e["event"] == "rollback" and "error_rate" in e["reason"] for e in trail), trail
    assert trail[-1]["event"] == "promote" and str(trail[-1]["version"]) == summary["final_champion"]


@pytest.mark.e2e
def test_demo_dashboard_renders_in_chromium(bad_challenger_demo, artifacts_dir: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    out, workdir = bad_challenger_demo
    assert out.returncode == 0, out.stderr[-3000:]
    page_path = workdir / "report.html"
    messages: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.on("console", lambda m: messages.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
        page.goto(page_path.as_uri())
        page.wait_for_selector(".plotly .main-svg", timeout=15000)
        text = page.inner_text("body")
        page.screenshot(path=str(artifacts_dir / "demo-dashboard.png"), full_page=True)
        browser.close()
    assert messages == []
    assert "rolled_back" in text and "promoted" in text
    shutil.copy(workdir / "summary.json", artifacts_dir / "demo-summary.json")

"""The demo dashboard renders in a real browser (Debian's headless Chromium) without console errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from driftloop.dashboard import render_dashboard, write_dashboard

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def sample_summary() -> dict:
    periods = []
    for i, month in enumerate(["2025-05", "2025-06", "2025-07", "2025-08", "2025-09"]):
        acc = 0.9 if i < 2 else 0.8 if i < 4 else 0.89
        periods.append({
            "period": month, "model_version": "1" if i < 4 else "2",
            "metrics": [{"metric": "accuracy", "segment": None, "value": acc, "threshold": 0.85}],
            "drift": [{"feature": "monthly_charges", "p_value": 0.5 if i < 2 else 1e-9, "drift": i >= 2}],
        })
    return {
        "scenario": "churn", "duration_s": 12.5, "final_champion": "2", "periods": periods,
        "events": [{"period": "2025-07", "action": "retrain", "strategy": "full",
                    "reasons": ["accuracy_floor: accuracy 0.80 < 0.85"]}],
        "rollouts": [{"period": "2025-08", "from_version": "1", "to_version": "2", "outcome": "promoted",
                      "reason": "all checks passed at every step",
                      "steps": [{"percent": p, "decision": "advance", "reasons": ["ok"],
                                 "checks": [{"metric": "error_rate", "value": 0.0, "threshold": 0.01, "passed": True},
                                            {"metric": "accuracy", "value": -0.08, "threshold": 0.02, "passed": True}]}
                                for p in (10, 25, 50, 100)]}],
    }


def test_dashboard_is_self_contained() -> None:
    html = render_dashboard(sample_summary())
    assert "<script src=" not in html, "no external scripts: the page must work offline"
    assert "Rollout 1: v1 -> v2: promoted" in html
    assert "accuracy_floor: accuracy 0.80 &lt; 0.85" in html


def test_rollout_figure_is_the_controllers_checks() -> None:
    from driftloop.dashboard import _rollout_figure

    fig = _rollout_figure(sample_summary()["rollouts"][0])
    by_name = {t.name: list(t.y) for t in fig.data}
    # each check's value and its limit, step by step, exactly as the controller recorded them
    assert by_name["error_rate"] == [0.0] * 4 and by_name["accuracy limit"] == [0.02] * 4
    assert by_name["accuracy"] == [-0.08] * 4 and by_name["traffic %"] == [10, 25, 50, 100]


def test_dashboard_renders_in_chromium_without_console_errors(tmp_path: Path, artifacts_dir: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: apt-get install chromium (make setup does it as root)")
    page_path = write_dashboard(sample_summary(), tmp_path / "report.html")
    messages: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.on("console", lambda m: messages.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
        page.goto(page_path.as_uri())
        page.wait_for_selector(".plotly .main-svg", timeout=15000)
        n_plots = page.locator(".js-plotly-plot").count()
        page.screenshot(path=str(artifacts_dir / "dashboard-sample.png"), full_page=True)
        browser.close()
    assert messages == []
    assert n_plots == 3, "performance, drift and one rollout figure"

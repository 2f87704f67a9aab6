"""The report JSON (shape, round trip) and the self-contained HTML rendered from it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.errors import DataError
from components.monitor.engine import run_monitors
from components.monitor.html import render_html, write_html
from components.monitor.results import MonitorReport
from components.policy import policy_from_dict

pytestmark = pytest.mark.unit


def _window(start: str, seed: int, flip: float, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 1000
    x1 = rng.normal(size=n)
    seg = rng.choice(["a", "b"], n)
    y = np.where(rng.random(n) < np.where(seg == "a", flip, 0.03), x1 <= 0, x1 > 0).astype(int)
    colour = rng.choice(["red", "green", "blue"], n, p=[0.6, 0.3, 0.1] if shift else [0.34, 0.33, 0.33])
    return pd.DataFrame({"event_timestamp": pd.date_range(start, periods=n, freq="h", tz="UTC"), "x1": x1,
                         "x2": rng.normal(shift, 1, n), "colour": colour, "seg": seg, "y": y, "prediction": 1 / (1 + np.exp(-3 * x1))})


@pytest.fixture(scope="module")
def report() -> MonitorReport:
    policy = policy_from_dict({
        "model": "toy", "entity": "id", "label": "y", "features": ["x1", "x2"], "categorical_features": ["colour"],
        "segments": {"column": "seg", "values": ["a", "b"]},
        "monitors": [{"name": "fd", "type": "feature_drift", "p_value": 0.01},
                     {"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.85, "per_segment": True, "min_samples": 200},
                     {"name": "pd", "type": "prediction_drift"}],
        "actions": [{"when": ["acc"], "strategy": "full"}, {"when": ["fd"], "action": "alert"}],
    })
    return run_monitors(policy, _window("2025-01-01", 1, 0.03, 0.0), _window("2025-03-01", 2, 0.3, 0.8), model_version="2")


def test_json_has_the_documented_shape(report: MonitorReport) -> None:
    doc = json.loads(report.to_json())
    assert {"action", "strategy", "reasons"} <= set(doc["decision"])
    assert doc["decision"]["action"] == "retrain" and doc["decision"]["strategy"] == "full"
    assert doc["window"]["rows"] == 1000 and doc["window"]["start"] < doc["window"]["end"]
    assert doc["model"] == "toy" and doc["model_version"] == "2" and doc["created_at"]
    for m in doc["monitors"]:
        assert {"name", "type", "fired", "results", "summary"} <= set(m)
        for r in m["results"]:
            assert {"test", "segment", "statistic", "p_value", "threshold", "drift", "detected_at"} <= set(r)
            assert (r["feature"] or r["metric"]) is not None
    fd = next(m for m in doc["monitors"] if m["name"] == "fd")
    assert {r["feature"] for r in fd["results"] if r["drift"] and r["test"] != "psi"} == {"x2", "colour"}


def test_json_round_trips_and_rejects_garbage(report: MonitorReport) -> None:
    again = MonitorReport.from_json(report.to_json())
    assert again.to_dict() == report.to_dict()
    assert again.fired_monitors() == ["fd", "acc"]
    with pytest.raises(DataError, match="lacks keys"):
        MonitorReport.from_json('{"model": "x"}')
    with pytest.raises(DataError, match="not valid JSON"):
        MonitorReport.from_json("{")


def test_html_is_self_contained_with_the_plots(report: MonitorReport, tmp_path: Path, artifacts_dir: Path) -> None:
    path = write_html(report, tmp_path / "report.html")
    page = path.read_text()
    (artifacts_dir / "monitor-report-toy.html").write_text(page)
    assert not re.search(r"<script[^>]+src=", page), "no external scripts"
    from plotly.offline import get_plotlyjs

    assert page.count(get_plotlyjs()[:300]) == 1, "plotly.js is inlined exactly once"
    assert "Plotly.newPlot" in page
    plots = page.count('class="plotly-graph-div"')
    # two drifted features' distributions + the per-segment performance chart
    assert plots == 3, plots
    assert "x2: reference vs current" in page and "colour: reference vs current" in page
    assert "acc: accuracy per segment vs baseline and threshold" in page


def test_html_text_reads_without_javascript(report: MonitorReport) -> None:
    page = render_html(report, include_plotlyjs=False)
    text = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    decision_at = text.index("Decision: retrain")
    assert decision_at < text.index('id="m-fd"'), "decision and reasons come first"
    for reason in report.decision["reasons"]:
        assert reason.replace("<", "&lt;").replace(">", "&gt;") in text
    assert "FIRED" in text and "x2" in text


@pytest.fixture(scope="module")
def stream_report() -> MonitorReport:
    """An error-rate jump half way through the window and a click-rate drop in cohort "b"."""
    policy = policy_from_dict({
        "model": "toy", "entity": "id", "label": "y", "features": ["x1"], "categorical_features": ["cohort"],
        "monitors": [{"name": "errors", "type": "concept_drift", "detector": "adwin", "min_samples": 200},
                     {"name": "ctr", "type": "sequential", "cohort_column": "cohort", "outcome": "click", "relative_drop": 0.3, "alpha": 0.01, "beta": 0.1}],
        "actions": [{"when": ["errors"], "strategy": "recent_window", "window": "7d"}, {"when": ["ctr"], "strategy": "cohort", "priority": 1}],
    })

    def window(start: str, seed: int, late_flip: float, b_rate: float) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        n = 3000
        x1 = rng.normal(size=n)
        flip = np.where(np.arange(n) < n // 2, 0.05, late_flip)
        cohort = rng.choice(["a", "b"], n)
        y = np.where(rng.random(n) < flip, x1 <= 0, x1 > 0).astype(int)
        click = (rng.random(n) < np.where(cohort == "b", b_rate, 0.5)).astype(int)
        return pd.DataFrame({"event_timestamp": pd.date_range(start, periods=n, freq="min", tz="UTC"), "x1": x1,
                             "cohort": cohort, "y": y, "click": click, "prediction": 1 / (1 + np.exp(-3 * x1))})

    return run_monitors(policy, window("2025-01-01", 1, 0.05, 0.5), window("2025-02-01", 2, 0.3, 0.25))


def test_html_plots_the_detector_trace_and_the_sprt_per_cohort(stream_report: MonitorReport) -> None:
    assert stream_report.fired_monitors() == ["errors", "ctr"]
    (err,) = stream_report.monitor("errors")["results"]
    assert 1500 <= err["detected_at"] < 2000, "detects the jump at row 1500 soon after it"
    sprt = {r["segment"]: r for r in stream_report.monitor("ctr")["results"]}
    assert sprt["b"]["drift"] and not sprt["a"]["drift"]
    trace = sprt["b"]["details"]["trace"]
    assert trace[-1]["llr"] >= sprt["b"]["details"]["upper"] > trace[0]["llr"], "the LLR trace ends at the upper boundary"
    assert stream_report.decision["cohort"] == "b"
    page = render_html(stream_report, include_plotlyjs=False)
    assert "errors: adwin on the error stream" in page and "detected" in page
    assert "ctr: SPRT log-likelihood ratio per cohort" in page and "accept drop (H1)" in page
    assert page.count('class="plotly-graph-div"') == 2


def test_plots_render_offline_in_a_real_browser(report: MonitorReport, tmp_path: Path) -> None:
    """Headless Chromium runs the inlined plotly.js from a file:// page (no network) and draws every plot."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed (scripts/install-system-deps.sh installs it)")
    page = write_html(report, tmp_path / "report.html")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    plots = dom.count('class="plotly-graph-div')
    assert plots == 3
    assert dom.count('class="main-svg"') >= plots, "plotly drew an SVG in every plot div"


def test_html_tolerates_a_trace_with_gaps() -> None:
    """Online detectors have no statistic while they warm up: those points are null in the JSON."""
    result = {"test": "fet_online", "statistic": 0.9, "p_value": None, "threshold": 0.8, "drift": True, "metric": "error_rate",
              "segment": None, "detected_at": 3, "status": "ok",
              "details": {"trace": [{"t": 0, "statistic": None, "threshold": None}, {"t": 1, "statistic": 0.2, "threshold": 0.8},
                                    {"t": 3, "statistic": 0.9, "threshold": 0.8}], "stream_position": 3}}
    report = MonitorReport(model="m", model_version=None, window={"start": "a", "end": "b", "rows": 4},
                           monitors=[{"name": "es", "type": "concept_drift", "fired": True, "summary": "s", "results": [result]}],
                           decision={"action": "alert", "reasons": ["es: s"]}, created_at="now")
    page = render_html(MonitorReport.from_json(report.to_json()), include_plotlyjs=False)
    assert "es: fet_online on the error stream" in page and "labelled row" in page

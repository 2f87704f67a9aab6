"""Component bodies called directly (their python_func) on scenario data, with artifacts in tmp paths."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Markdown, Metrics, Model

from components.data.scenarios import generate
from components.decision import DecisionLedger
from components.errors import ConfigError, DataError
from components.kfp import canary, runtime
from components.kfp import data as data_steps
from components.kfp import monitor as monitor_steps
from components.kfp import training as training_steps
from components.registry import ModelRegistry
from components.windows import resolve_monitoring_windows, rows_for

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def churn_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "churn.parquet"
    generate("churn", rows=6000, seed=0).to_parquet(path, index=False)
    return path


def test_get_features_selects_the_window_from_a_parquet_source(tmp_path: Path, churn_parquet: Path) -> None:
    out = Dataset(uri=str(tmp_path / "data"))
    data_steps.get_features.python_func(policy="churn", start="2025-03-01", end="2025-05-01", source=str(churn_parquet), cohort="", workdir="", data=out)
    frame = pd.read_parquet(out.path)
    assert frame["event_timestamp"].min() >= pd.Timestamp("2025-03-01", tz="UTC")
    assert frame["event_timestamp"].max() < pd.Timestamp("2025-05-01", tz="UTC")
    assert len(frame) == 500 and out.metadata["rows"] == 500  # 250 customers a month


def test_validate_data_logs_figures_and_names_missing_columns(tmp_path: Path, churn_parquet: Path) -> None:
    frame = pd.read_parquet(churn_parquet)
    good, bad = tmp_path / "good", tmp_path / "bad"
    frame.to_parquet(good)
    frame.drop(columns=["support_calls"]).to_parquet(bad)
    metrics = Metrics(uri=str(tmp_path / "m"))
    rows = data_steps.validate_data.python_func(policy="churn", data=Dataset(uri=str(good)), min_rows=10, need_label=True, metrics=metrics)
    assert rows == len(frame) and metrics.metadata["rows"] == len(frame)
    assert 0.05 < metrics.metadata["label_rate"] < 0.3
    with pytest.raises(DataError, match=r"lacks columns \['support_calls'\]"):
        data_steps.validate_data.python_func(policy="churn", data=Dataset(uri=str(bad)), min_rows=10, need_label=True, metrics=metrics)
    with pytest.raises(DataError, match="fewer than the 100000 required"):
        data_steps.validate_data.python_func(policy="churn", data=Dataset(uri=str(good)), min_rows=100000, need_label=True, metrics=metrics)


def test_resolve_windows_defaults_to_the_latest_period(churn_parquet: Path) -> None:
    w = data_steps.resolve_windows.python_func(policy="churn", source=str(churn_parquet), current_start="", current_end="", reference_start="", reference_end="")
    assert w.current_start.startswith("2025-12-01") and w.current_end.startswith("2026-01-01")
    # Defect 3 (issue 12): an empty reference_start used to stay "" and reach the feature
    # store as NaT (an empty reference); it is now the policy's default reference window.
    assert w.reference_end == w.current_start and w.reference_start.startswith("2025-02-01")
    reference = rows_for(runtime.resolve_policy("churn"), w.reference_start, w.reference_end, str(churn_parquet), "", runtime.settings_for(""))
    assert len(reference) > 0 and reference["event_timestamp"].min() >= pd.Timestamp("2025-02-01", tz="UTC")
    explicit = data_steps.resolve_windows.python_func(policy="churn", source=str(churn_parquet), current_start="", current_end="", reference_start="2024-06-01", reference_end="")
    assert explicit.reference_start.startswith("2024-06-01")
    with pytest.raises(ConfigError, match="reference_end <= current_start"):
        resolve_monitoring_windows(runtime.resolve_policy("churn"), pd.Timestamp("2025-12-01", tz="UTC"), "2025-06-01", "", "", "2025-07-01")


def test_bad_policy_parameter_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="parameter 'policy' is empty"):
        runtime.resolve_policy(" ")
    with pytest.raises(ConfigError, match="monitors.0: unknown monitor type"):
        runtime.resolve_policy("model: x\nentity: id\nlabel: y\nfeatures: [a]\nmonitors:\n  - {name: m, type: magic}\n")
    with pytest.raises(ConfigError, match="'start' = 'last tuesday' is not a timestamp"):
        runtime.parse_time("last tuesday", "start")


def _report(tmp_path: Path, fired: bool, window_end: str) -> Artifact:
    from components.decision import decide
    from components.monitor.results import MonitorReport

    policy = runtime.resolve_policy("churn")
    monitors = [{"name": "accuracy_floor", "type": "performance", "fired": fired, "summary": "accuracy 0.76 < 0.85", "results": []}]
    window = {"start": "2025-09-01", "end": window_end, "rows": 250}
    decision = decide(policy, monitors, "1", window)
    report = MonitorReport("churn", "1", window, monitors, decision.to_dict(), "2026-11-28T00:00:00+00:00")
    path = tmp_path / f"report-{fired}-{window_end}.json"
    path.write_text(report.to_json())
    return Artifact(uri=str(path))


def test_decide_acts_on_a_retrain_once_per_window(tmp_path: Path) -> None:
    md = Markdown(uri=str(tmp_path / "d.md"))
    work = str(tmp_path / "work")
    first = monitor_steps.decide.python_func(policy="churn", report=_report(tmp_path, True, "2025-10-01"), window_end="2025-10-01", workdir=work, emergency=False, decision_md=md)
    action = next(a for a in runtime.resolve_policy("churn").actions if "accuracy_floor" in a.when)
    assert (first.action, first.strategy, first.window, first.end) == ("retrain", action.strategy, action.window or "", "2025-10-01")
    assert "accuracy_floor: accuracy 0.76 < 0.85" in Path(md.path).read_text()
    again = monitor_steps.decide.python_func(policy="churn", report=_report(tmp_path, True, "2025-10-01"), window_end="2025-10-01", workdir=work, emergency=False, decision_md=md)
    assert again.action == "none" and again.idempotency_key == first.idempotency_key
    assert "Already acted on" in Path(md.path).read_text()
    later = monitor_steps.decide.python_func(policy="churn", report=_report(tmp_path, True, "2025-11-01"), window_end="2025-11-01", workdir=work, emergency=False, decision_md=md)
    assert later.action == "retrain"  # a new window is a new decision
    quiet = monitor_steps.decide.python_func(policy="churn", report=_report(tmp_path, False, "2025-12-01"), window_end="2025-12-01", workdir=work, emergency=False, decision_md=md)
    assert quiet.action == "none" and "no monitor fired" in Path(md.path).read_text()
    assert DecisionLedger(Path(work) / "decisions.db").seen(first.idempotency_key)


def test_emergency_trigger_retrains_on_the_newest_data_with_the_policy_window(tmp_path: Path) -> None:
    from components.decision import decide
    from components.monitor.results import MonitorReport

    policy = runtime.resolve_policy("fraud")
    monitors = [{"name": "error_stream", "type": "concept_drift", "fired": False, "summary": "quiet", "results": []}]
    window = {"start": "2025-03-10T00:00:00+00:00", "end": "2025-03-10T01:00:00+00:00", "rows": 700}
    report = MonitorReport("fraud", "3", window, monitors, decide(policy, monitors, "3", window).to_dict(), "now")
    path = tmp_path / "r.json"
    path.write_text(report.to_json())
    out = monitor_steps.decide.python_func(policy=runtime.policy_text("fraud"), report=Artifact(uri=str(path)), window_end="2025-03-10T01:00:00+00:00", workdir=str(tmp_path),
                                           emergency=True, decision_md=Markdown(uri=str(tmp_path / "md")))
    assert (out.action, out.strategy, out.window, out.end) == ("retrain", "emergency", "48h", "")
    assert "manual emergency trigger" in (tmp_path / "md").read_text()


def test_training_steps_train_and_gate_without_a_champion(tmp_path: Path, churn_parquet: Path) -> None:
    work = str(tmp_path / "work")
    train_data, holdout = Dataset(uri=str(tmp_path / "train")), Dataset(uri=str(tmp_path / "holdout"))
    time_range = training_steps.build_training_data.python_func(policy="churn", strategy="recent_window", end="2025-01-01", window="6M", cohort="",
                                                             source=str(churn_parquet), workdir=work, train_data=train_data, holdout=holdout)
    assert time_range == "2024-07-01T00:00:00+00:00/2025-01-01T00:00:00+00:00"
    train_rows, holdout_rows = pd.read_parquet(train_data.path), pd.read_parquet(holdout.path)
    assert train_rows["event_timestamp"].max() < holdout_rows["event_timestamp"].min()

    model, metrics = Model(uri=str(tmp_path / "model")), Metrics(uri=str(tmp_path / "m"))
    training_steps.train.python_func(policy="churn", train_data=train_data, model=model, metrics=metrics)
    assert model.metadata["kind"] == "sklearn_hgb" and metrics.metadata["rows"] == len(train_rows)

    roc, verdict = ClassificationMetrics(uri=str(tmp_path / "roc")), Artifact(uri=str(tmp_path / "verdict"))
    md = Markdown(uri=str(tmp_path / "v.md"))
    passed = training_steps.evaluate.python_func(policy="churn", model=model, holdout=holdout, workdir=work, metrics=Metrics(uri=str(tmp_path / "em")),
                                                 roc=roc, verdict=verdict, verdict_md=md)
    saved = json.loads(Path(verdict.path).read_text())
    assert passed is saved["passed"] is True and saved["champion"] is None
    assert saved["challenger"]["overall"]["auc"] > 0.6
    curve = roc.metadata["confidenceMetrics"]
    assert curve[0]["falsePositiveRate"] <= curve[-1]["falsePositiveRate"]
    matrix = roc.metadata["confusionMatrix"]["rows"]
    assert sum(sum(r["row"]) for r in matrix) == len(holdout_rows)
    assert Path(md.path).read_text().startswith("# Gate on auc: PASSED")

    def register() -> tuple[str, Metrics]:
        out = Metrics(uri=str(tmp_path / "rm"))
        alias = training_steps.register.python_func(policy="churn", model=model, train_data=train_data, holdout=holdout, verdict=verdict, time_range=time_range,
                                                    strategy="recent_window", cohort="", decision_key="d-1", workdir=work, metrics=out)
        return alias, out

    from dataclasses import replace

    from components.decision import decide, open_ledger

    ledger = open_ledger(runtime.settings_for(work))
    claimed = replace(decide(runtime.resolve_policy("churn"), [], "0", {}), idempotency_key="d-1")
    assert ledger.claim(claimed) and ledger.state("d-1") == "claimed"  # as the decide step leaves it
    alias, out = register()
    assert ledger.state("d-1") == "done", "registering is what makes the retrain's claim final (issue 12, defect 5)"
    assert alias == "champion" and out.metadata["version"] == 1.0  # the first passing model: no bootstrap needed
    registry = ModelRegistry(runtime.settings_for(work))
    champion = registry.get("churn", "champion")
    assert champion is not None and champion.tags["driftloop.window"] == time_range and champion.tags["driftloop.decision_id"] == "d-1"
    assert register()[0] == "champion"  # a retried step reuses the version and moves nothing
    assert [v.version for v in registry.versions("churn")] == [1]


def test_monitor_step_writes_report_html_and_metrics(tmp_path: Path, churn_parquet: Path) -> None:
    from components.training.trainers import train_model

    policy = runtime.resolve_policy("churn")
    frame = pd.read_parquet(churn_parquet)
    ts = frame["event_timestamp"]
    model = train_model(policy, frame[ts < "2025-01-01"])
    frame["prediction"] = model.predict(frame)
    ref, cur = tmp_path / "ref", tmp_path / "cur"
    frame[ts < "2025-01-01"].to_parquet(ref)
    frame[(ts >= "2025-09-01") & (ts < "2025-10-01")].to_parquet(cur)
    report, html, metrics = Artifact(uri=str(tmp_path / "r")), HTML(uri=str(tmp_path / "h")), Metrics(uri=str(tmp_path / "m"))
    fired = monitor_steps.run_monitor.python_func(policy="churn", reference=Dataset(uri=str(ref)), current=Dataset(uri=str(cur)), model_version="",
                                                  workdir=str(tmp_path), report=report, report_html=html, metrics=metrics)
    saved = json.loads(Path(report.path).read_text())
    assert "accuracy_floor" in fired.split(",") and saved["decision"]["action"] == "retrain"
    assert metrics.metadata["fired.accuracy_floor"] == 1.0 and metrics.metadata["rows"] == 250
    assert Path(html.path).read_text().lstrip().lower().startswith("<!doctype html")


@pytest.mark.parametrize(("backend", "replay", "prometheus", "needle"), [
    ("mars", "", "", "unknown canary backend 'mars'"),
    ("local", "", "", "a local canary needs traffic"),
    ("kubernetes", "", "", "set DRIFTLOOP_PROMETHEUS_URL"),
])
def test_canary_rollout_config_errors_before_any_traffic(tmp_path: Path, backend: str, replay: str, prometheus: str, needle: str) -> None:
    from components.settings import Settings

    with pytest.raises(ConfigError, match=needle):
        canary.canary_rollout(runtime.resolve_policy("churn"), Settings(workdir=tmp_path, prometheus_url=prometheus), backend, replay=replay)

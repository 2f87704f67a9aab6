"""materialize_and_check on a local Feast repo: an upstream bug in a shared view is caught at
materialization, kept out of the online store, and told once to every model that reads it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from components.data.scenarios import generate
from components.errors import ConfigError
from components.features import apply, ingest, open_store
from components.features.materialize_check import check_view, materialize_and_check
from components.settings import FEATURE_REPO_DIR, POLICY_DIR, Settings
from components.upstream import upstream_events, upstream_reasons

pytestmark = pytest.mark.integration

VIEW = "churn_features"
IDS = list(range(1, 11))
READ = [f"{VIEW}:{c}" for c in ("monthly_charges", "support_calls", "contract")]
MAY, JUNE = ("2025-05-01", "2025-06-01"), ("2025-06-01", "2025-07-01")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    """A work directory with churn ingested, June 2025 broken upstream, and a second model (retention) reading churn_features."""
    from feast import FeatureService

    root = tmp_path_factory.mktemp("fviews")
    settings = Settings(workdir=root / "work")
    apply(settings)
    raw = generate("churn", rows=24 * 150, seed=5)
    june = raw["event_timestamp"] == pd.Timestamp("2025-06-01", tz="UTC")
    raw.loc[june, "support_calls"] = np.nan  # a join upstream drops the column
    raw.loc[june, "monthly_charges"] *= 100  # and a job starts writing cents
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    raw.to_parquet(settings.data_dir / "churn.parquet", index=False)
    ingest("churn", settings)
    store = open_store(settings)
    view = store.get_feature_view(VIEW)
    store.apply([FeatureService(name="retention_v1", features=[view[["monthly_charges", "support_calls", "contract"]]])])
    policies = root / "policies"
    policies.mkdir()
    for name in ("churn", "fraud"):
        shutil.copy(POLICY_DIR / f"{name}.yaml", policies)
    retention = yaml.safe_load((POLICY_DIR / "churn.yaml").read_text())
    retention.update(model="retention", feature_service="retention_v1")
    (policies / "retention.yaml").write_text(yaml.safe_dump(retention))
    return settings, policies


def _online(settings: Settings) -> pd.DataFrame:
    store = open_store(settings)
    return store.get_online_features(features=READ, entity_rows=[{"customer_id": i} for i in IDS]).to_df()


def test_clean_month_is_materialized_and_tells_nobody(work: tuple[Settings, Path]) -> None:
    settings, policies = work
    report = materialize_and_check(VIEW, *MAY, settings, policy_dir=policies)
    assert report.passed and not report.blocked and report.models == []
    online = _online(settings)
    may = generate("churn", rows=24 * 150, seed=5).set_index(["customer_id", "event_timestamp"]).xs(pd.Timestamp(MAY[0], tz="UTC"), level=1)
    assert online["monthly_charges"].tolist() == pytest.approx(may.loc[IDS, "monthly_charges"].tolist())
    assert upstream_reasons("churn", settings) == []


def test_broken_month_is_blocked_and_every_reader_is_named(work: tuple[Settings, Path]) -> None:
    settings, policies = work
    before = _online(settings)
    report = materialize_and_check(VIEW, *JUNE, settings, policy_dir=policies)
    failed = {(q.check, q.feature) for q in report.failed_quality}
    assert {("null_share", "support_calls"), ("range", "monthly_charges")} <= failed
    assert report.blocked and "monthly_charges" in report.drifted_features
    pd.testing.assert_frame_equal(_online(settings), before)  # the online store still serves May
    assert report.models == ["churn", "retention"]  # fraud reads another view
    assert upstream_reasons("retention", settings) == ["upstream feature drift in churn_features: monthly_charges, support_calls"]
    assert upstream_reasons("churn", settings) == upstream_reasons("retention", settings)
    assert upstream_reasons("fraud", settings) == []
    # one event, named once per model; a re-run of the same window does not add another
    materialize_and_check(VIEW, *JUNE, settings, policy_dir=policies)
    assert [e["id"] for e in upstream_events("churn", settings)] == [f"{VIEW}@{report.window['start']}..{report.window['end']}"]


def test_kfp_step_blocks_the_same_batch_and_exports_metrics(work: tuple[Settings, Path], tmp_path: Path) -> None:
    from kfp.dsl import Artifact, Metrics
    from prometheus_client import CollectorRegistry

    from components.features.view_metrics import export_view_metrics
    from components.features.views_monitor import ViewReport
    from components.kfp.feature_checks import check_and_materialize

    settings, _ = work
    before = _online(settings)
    report, metrics = Artifact(uri=str(tmp_path / "report")), Metrics(uri=str(tmp_path / "metrics"))
    out = check_and_materialize.python_func(view=VIEW, start=JUNE[0], end=JUNE[1], checks="", pushgateway="", workdir=str(settings.workdir),
                                            report=report, metrics=metrics)
    assert (out.verdict, out.blocked, out.models) == ("blocked", True, "churn")  # the bundled policies: churn reads churn_features
    assert metrics.metadata["blocked"] == 1 and metrics.metadata["failed_quality_checks"] >= 2
    pd.testing.assert_frame_equal(_online(settings), before)
    saved = json.loads(Path(report.path).read_text())
    assert saved["verdict"] == "blocked" and "support_calls" in saved["affected_features"]
    registry = export_view_metrics(ViewReport(VIEW, saved["window"], saved["rows"], [], [], "block", blocked=True), CollectorRegistry())
    assert registry.get_sample_value("driftloop_feature_view_blocked", {"view": VIEW}) == 1.0


def test_warn_mode_materializes_the_same_batch(work: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, policies = work
    checks = yaml.safe_load((FEATURE_REPO_DIR / "feature_checks.yaml").read_text())
    checks[VIEW]["on_fail"] = "warn"
    path = tmp_path / "feature_checks.yaml"
    path.write_text(yaml.safe_dump(checks))
    report = materialize_and_check(VIEW, *JUNE, settings, checks=path, policy_dir=policies)
    assert not report.passed and not report.blocked
    assert _online(settings)["support_calls"].isna().all()  # what blocking kept out


def test_bad_window_and_unknown_view(work: tuple[Settings, Path]) -> None:
    settings, _ = work
    with pytest.raises(ConfigError, match="must be before"):
        check_view(VIEW, "2025-07-01", "2025-06-01", settings)
    with pytest.raises(ConfigError, match="'nope_features' has no checks"):
        check_view("nope_features", *JUNE, settings)

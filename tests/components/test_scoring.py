"""components.scoring: the one rule for monitoring with the registered model (CLI and monitor step share it)."""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from components.errors import DataError
from components.registry import ModelRegistry
from components.scoring import monitor_report, score_windows
from components.settings import Settings
from components.training.workflow import register_and_alias
from tests.components.registry.mlflow_fixtures import Trained, trained  # noqa: F401  (fixtures)


@pytest.mark.unit
def test_windows_with_predictions_pass_through_without_opening_a_registry(tmp_path: Path, trained: Trained) -> None:
    frame = trained.frame.assign(prediction=0.3)
    scored = score_windows(trained.policy, frame, frame, "7", Settings(workdir=tmp_path / "none"))
    assert scored.reference is frame and scored.model_version == "7" and scored.baseline is None and not scored.from_registry
    assert not (tmp_path / "none").exists()


@pytest.mark.unit
def test_without_predictions_and_without_a_registry_names_the_fix_and_creates_no_store(tmp_path: Path, trained: Trained) -> None:
    with pytest.raises(DataError, match="no model registry at sqlite:///"):
        score_windows(trained.policy, trained.frame, trained.frame, None, Settings(workdir=tmp_path / "none"))
    assert not (tmp_path / "none").exists()


@pytest.mark.integration
def test_the_champion_scores_the_rows_and_supplies_reference_and_baseline(tmp_path: Path, trained: Trained) -> None:
    t = replace(trained, policy=trained.policy.model_copy(update={"model": "scored"}))
    settings = Settings(workdir=tmp_path)
    registry = ModelRegistry(settings)
    register_and_alias(t.policy, t.model, t.data, replace(t.verdict, passed=False), registry, decision_id="failed")
    with pytest.raises(DataError, match="models:/scored@champion does not resolve"):  # a gate failure is registered but never scores
        score_windows(t.policy, t.frame, t.frame, None, settings)
    version, alias = register_and_alias(t.policy, t.model, t.data, t.verdict, registry)
    assert alias == "champion"
    current = t.data.holdout.drop(columns=[c for c in ("prediction",) if c in t.data.holdout])
    scored = score_windows(t.policy, None, current, None, settings)
    assert scored.from_registry and scored.model_version == str(version.version)
    assert np.allclose(scored.current["prediction"], t.model.predict(current))
    assert len(scored.reference) == len(registry.reference_sample("scored", str(version.version)))
    assert scored.baseline == registry.baseline_metrics("scored", str(version.version))
    report = monitor_report(t.policy, None, current, "champion", settings)
    assert report.model_version == str(version.version) and report.monitors


@pytest.mark.integration
def test_a_named_version_s_registered_profile_serves_the_drift_monitors_and_one_without_falls_back_with_a_note(tmp_path: Path, trained: Trained) -> None:
    from components.monitor.engine import run_monitors
    from components.registry.artifacts import PROFILE_DIGEST_TAG
    from tests.components.training.training_synth import make_policy

    policy = make_policy(model="profiled", monitors=[{"name": "gini", "type": "performance", "metric": "gini", "max_relative_drop": 0.05},
                                                      {"name": "fd", "type": "feature_drift", "numeric_test": "cvm", "per_segment": True},
                                                      {"name": "pd", "type": "prediction_drift"}])
    t = replace(trained, policy=policy)
    settings = Settings(workdir=tmp_path)
    registry = ModelRegistry(settings)
    version, _ = register_and_alias(t.policy, t.model, t.data, t.verdict, registry)
    v = str(version.version)
    tag = registry._require("profiled", int(v)).tags[PROFILE_DIGEST_TAG]
    current = t.data.holdout.assign(prediction=t.model.predict(t.data.holdout))
    sample = registry.reference_sample("profiled", v)

    report = monitor_report(t.policy, None, current, v, settings)  # the reference comes from the registry: its profile serves fd and pd
    assert report.reference_window["profile_sha256"] == tag and {"fd", "pd"} <= set(report.reference_window["profiled_monitors"])
    from_rows = run_monitors(t.policy, sample, current)
    for name in ("fd", "pd"):
        assert [r["p_value"] for r in report.monitor(name)["results"]] == [r["p_value"] for r in from_rows.monitor(name)["results"]]

    with registry._service():
        registry._client().delete_model_version_tag("profiled", v, PROFILE_DIGEST_TAG)
    report = monitor_report(t.policy, None, current, v, settings)
    assert "profile_sha256" not in report.reference_window
    assert any(f"version {v} has no registered reference profile" in w for w in report.warnings)
    assert [r["p_value"] for r in report.monitor("fd")["results"]] == [r["p_value"] for r in from_rows.monitor("fd")["results"]]

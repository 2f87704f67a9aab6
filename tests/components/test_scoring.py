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

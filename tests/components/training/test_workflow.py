"""The one retrain-and-register rule (components.training.workflow) on the embedded SQLite registry."""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from components.registry import CHALLENGER, CHAMPION, ModelRegistry
from components.settings import Settings
from components.training.workflow import gate, register_and_alias, training_set
from tests.components.registry.mlflow_fixtures import Trained, trained  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


def _named(t: Trained, model: str) -> Trained:
    return replace(t, policy=t.policy.model_copy(update={"model": model}))


def _failed(verdict: object) -> object:
    return replace(verdict, passed=False, reasons=("overall auc: 0.51 < 0.52 (challenger not better)",))  # type: ignore[type-var]


def test_first_passing_model_is_champion_later_ones_challengers_failures_registered_without_alias(tmp_path, trained: Trained) -> None:
    t = _named(trained, "rule")
    registry = ModelRegistry(Settings(workdir=tmp_path))
    failed, alias = register_and_alias(t.policy, t.model, t.data, _failed(t.verdict), registry, decision_id="d-0")
    assert alias is None and failed.tags["driftloop.gate_passed"] == "false"  # a failure is auditable, not served
    assert registry.get("rule", CHAMPION) is None

    first, alias = register_and_alias(t.policy, t.model, t.data, t.verdict, registry, decision_id="d-1", actor="test")
    assert alias == CHAMPION and registry.get("rule", CHAMPION).version == first.version == failed.version + 1
    second, alias = register_and_alias(t.policy, t.model, t.data, t.verdict, registry, decision_id="d-2")
    assert alias == CHALLENGER and registry.get("rule", CHALLENGER).version == second.version
    assert registry.get("rule", CHAMPION).version == first.version  # only a rollout promotes a challenger

    events = len(registry.history("rule"))
    again, alias = register_and_alias(t.policy, t.model, t.data, t.verdict, registry, decision_id="d-2")
    assert (again.version, alias) == (second.version, CHALLENGER) and len(registry.history("rule")) == events  # a retry moves nothing
    registry.rollback("rule", reason="bad canary")
    after, alias = register_and_alias(t.policy, t.model, t.data, t.verdict, registry, decision_id="d-2")
    assert after.version == second.version and alias is None and registry.get("rule", CHALLENGER) is None  # a rolled-back version stays out


def test_gate_compares_with_the_registered_champion(tmp_path, trained: Trained) -> None:
    t = _named(trained, "gated")
    registry = ModelRegistry(Settings(workdir=tmp_path))
    alone = gate(t.policy, t.model, t.data.holdout, registry)
    assert alone.champion is None
    register_and_alias(t.policy, t.model, t.data, alone, registry)
    against = gate(t.policy, t.model, t.data.holdout, registry)
    assert against.champion is not None
    assert against.champion["overall"]["auc"] == pytest.approx(against.challenger["overall"]["auc"])  # same model, same rows


def test_training_set_reads_a_source_and_defaults_end_to_its_newest_row(tmp_path, trained: Trained) -> None:
    path = tmp_path / "rows.parquet"
    trained.frame.to_parquet(path)
    data = training_set(trained.policy, "full", "", source=str(path))
    newest = pd.to_datetime(trained.frame["event_timestamp"], utc=True).max()
    assert data.window_end == newest and data.strategy == "full"
    cut = training_set(trained.policy, "full", "2025-01-20T00:00:00Z", source=trained.frame)
    assert cut.window_end == pd.Timestamp("2025-01-20", tz="UTC") and len(cut.train) < len(data.train)

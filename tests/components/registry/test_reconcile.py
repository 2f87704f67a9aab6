"""Half-done alias moves are repaired from the audit trail and the service's rollout record."""

# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from components.registry import CHALLENGER, CHAMPION, ModelRegistry
from components.registry.reconcile import pending_intent, reconcile
from components.settings import Settings
from tests.components.registry.mlflow_fixtures import Trained, trained  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    return ModelRegistry(Settings(workdir=tmp_path_factory.mktemp("reconcile")))


def _versions(registry: ModelRegistry, trained: Trained, model: str, n: int) -> list[int]:
    t = replace(trained, policy=trained.policy.model_copy(update={"model": model}))
    return [registry.register(t.policy, t.model, t.data, t.verdict, decision_id=f"d{i}").version for i in range(n)]


class _DiesAfter:
    """An MlflowClient whose process 'dies' (raises) on the call after ``calls`` alias/tag writes."""

    def __init__(self, client: object, calls: int) -> None:
        self.client, self.left = client, calls

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.client, name)
        if not name.startswith(("set_", "delete_")) or name == "set_registered_model_tag":  # audit entries still land
            return attr

        def call(*args: object, **kw: object) -> object:
            if self.left <= 0:
                raise RuntimeError("controller killed mid-move")
            self.left -= 1
            return attr(*args, **kw)

        return call


def test_half_done_promotion_is_completed(registry: ModelRegistry, trained: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    v1, v2 = _versions(registry, trained, "halfpromo", 2)
    registry.promote("halfpromo", v1, reason="first")
    registry.set_challenger("halfpromo", v2, reason="gate passed")
    real = registry._client()
    monkeypatch.setattr(registry, "_client", lambda: _DiesAfter(real, 1))  # the champion alias moves, nothing else
    with pytest.raises(RuntimeError, match="killed"):
        registry.promote("halfpromo", v2, actor="canary", reason="all checks passed")
    monkeypatch.undo()
    # the crash left both aliases on v2 and no promote entry: rollback could not find v1
    assert registry.get("halfpromo", CHAMPION).version == v2 and registry.get("halfpromo", CHALLENGER).version == v2  # type: ignore[union-attr]
    assert pending_intent(registry.history("halfpromo", intents=True))["version"] == v2  # type: ignore[index]

    done = reconcile(registry, "halfpromo")
    assert done == [f"completed promote: champion -> version {v2} (was {v1})"]
    assert registry.get("halfpromo", CHAMPION).version == v2 and registry.get("halfpromo", CHALLENGER) is None  # type: ignore[union-attr]
    assert [(e["event"], e["version"], e["previous"]) for e in registry.history("halfpromo")][-1] == ("promote", v2, v1)
    assert registry._require("halfpromo", v1).tags["driftloop.replaced_by"] == str(v2)
    assert reconcile(registry, "halfpromo") == []  # idempotent
    # and the repaired trail lets rollback find the earlier champion again
    assert registry.rollback("halfpromo", reason="complaints").version == v1  # type: ignore[union-attr]


def test_service_record_wins_when_the_registry_never_moved(registry: ModelRegistry, trained: Trained) -> None:
    v1, v2 = _versions(registry, trained, "servedpromo", 2)
    registry.promote("servedpromo", v1, reason="first")
    registry.set_challenger("servedpromo", v2, reason="gate passed")
    # MLflow was down at promotion: the service serves v2 at 100%, the registry still names v1
    served = {"phase": "promoting", "champion": str(v1), "challenger": str(v2)}
    assert reconcile(registry, "servedpromo", served) == [f"promoted version {v2}: the service serves it"]
    assert registry.get("servedpromo", CHAMPION).version == v2  # type: ignore[union-attr]
    assert registry.history("servedpromo")[-1]["previous"] == v1
    assert reconcile(registry, "servedpromo", {**served, "phase": "promoted"}) == []


def test_rollback_of_a_version_keeps_a_newer_challenger(registry: ModelRegistry, trained: Trained) -> None:
    v1, v2, v3 = _versions(registry, trained, "newer", 3)
    registry.promote("newer", v1, reason="first")
    registry.set_challenger("newer", v2, reason="gate passed")
    registry.set_challenger("newer", v3, reason="a retrain landed during v2's canary")
    after = registry.rollback("newer", actor="canary", reason="error_rate 0.2 > 0.01", version=v2)
    assert after.version == v1  # type: ignore[union-attr]
    assert registry.get("newer", CHALLENGER).version == v3  # type: ignore[union-attr]
    assert registry._require("newer", v2).tags["driftloop.rollback_reason"] == "error_rate 0.2 > 0.01"
    event = registry.history("newer")[-1]
    assert (event["event"], event["previous"], event["version"]) == ("rollback", v2, v3) and "kept on newer version" in event["reason"]
    # a rolled-back service record with v2 as challenger leaves v3 alone too
    assert reconcile(registry, "newer", {"phase": "rolled_back", "champion": str(v1), "challenger": str(v2)}) == []


def test_cli_reconcile_reads_the_local_rollout_record(registry: ModelRegistry, trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from driftloop.cli import cli as main
    from serving.canary.state import FileState, RolloutRecord

    v1, v2 = _versions(registry, trained, "clirecon", 2)
    registry.promote("clirecon", v1, reason="first")
    state = tmp_path / "clirecon-rollout.json"
    FileState(state).write_state(RolloutRecord("clirecon", str(v1), str(v2), "dead-controller", phase="promoting", step=1, percent=100), "0")
    monkeypatch.setattr("driftloop.commands.registry._registry", lambda workdir: registry)
    out = CliRunner().invoke(main, ["registry", "reconcile", "--model", "clirecon", "--state-file", str(state)])
    assert out.exit_code == 0, out.output
    assert f"promoted version {v2}" in out.output and registry.get("clirecon", CHAMPION).version == v2  # type: ignore[union-attr]
    again = CliRunner().invoke(main, ["registry", "reconcile", "--model", "clirecon", "--state-file", str(state)])
    assert "nothing to repair" in again.output

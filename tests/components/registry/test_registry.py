"""The registry on the embedded SQLite store: lineage, idempotency, aliases and audit, loading, failures."""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from components.errors import DataError, DriftloopError, ServiceUnavailable
from components.registry import CHALLENGER, CHAMPION, ModelRegistry
from components.settings import Settings
from tests.components.registry.mlflow_fixtures import Trained, mlflow_server, trained  # noqa: F401  (fixtures)
from tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    return ModelRegistry(Settings(workdir=tmp_path_factory.mktemp("registry")))


def _named(trained: Trained, model: str) -> Trained:
    return replace(trained, policy=trained.policy.model_copy(update={"model": model}))


def test_register_records_lineage_metrics_and_artifacts(registry: ModelRegistry, trained: Trained) -> None:
    t = _named(trained, "lineage")
    info = registry.register(t.policy, t.model, t.data, t.verdict, decision_id="dec-7", feature_service="credit_v1")
    assert info.version == 1 and info.model == "lineage"
    assert info.params["strategy"] == "full" and info.params["decision_id"] == "dec-7"
    assert info.params["feature_service"] == "credit_v1"
    assert info.params["window_start"] == "2025-01-01T00:00:00+00:00" and info.params["window_end"] == "2025-02-01T00:00:00+00:00"
    assert info.params["train_rows"] == str(len(t.data.train))
    assert info.metrics["baseline.auc"] == pytest.approx(t.verdict.challenger["overall"]["auc"])
    assert info.metrics["baseline.segment.subprime.gini"] == pytest.approx(t.verdict.challenger["segments"]["subprime"]["gini"])
    registry.promote("lineage", info.version, actor="test", reason="first model")
    baseline = registry.baseline_metrics("lineage", CHAMPION)
    assert baseline["segments"]["prime"]["auc"] == pytest.approx(t.verdict.challenger["segments"]["prime"]["auc"])
    sample = registry.reference_sample("lineage", CHAMPION)
    assert len(sample) == len(t.data.holdout)
    assert {"prediction", "defaulted", "segment", *t.policy.all_features} <= set(sample.columns)
    np.testing.assert_allclose(sample["prediction"], t.model.predict(t.data.holdout))
    profile = registry.profile("lineage")
    assert set(profile) == set(t.policy.all_features)
    assert profile["x1"]["median"] == pytest.approx(t.data.train["x1"].median())


def test_register_is_idempotent_per_key(registry: ModelRegistry, trained: Trained) -> None:
    t = _named(trained, "idem")
    first = registry.register(t.policy, t.model, t.data, t.verdict, decision_id="d-1")
    retry = registry.register(t.policy, t.model, t.data, t.verdict, decision_id="d-1")
    assert retry.version == first.version and retry.run_id == first.run_id
    other = registry.register(t.policy, t.model, t.data, t.verdict, decision_id="d-2")
    assert other.version == first.version + 1
    assert [v.version for v in registry.versions("idem")] == [2, 1]


def test_aliases_promote_rollback_and_history(registry: ModelRegistry, trained: Trained) -> None:
    t = _named(trained, "aliases")
    v1, v2, v3 = (registry.register(t.policy, t.model, t.data, t.verdict, decision_id=f"d{i}").version for i in (1, 2, 3))
    assert registry.get("aliases", CHAMPION) is None
    registry.promote("aliases", v1, actor="alice", reason="initial")
    registry.set_challenger("aliases", v2, actor="bot", reason="gate passed")
    assert registry.get("aliases", CHALLENGER).version == v2  # type: ignore[union-attr]
    after = registry.rollback("aliases", actor="canary", reason="error_rate 0.05 > 0.01")
    assert after is not None and after.version == v1
    assert registry.get("aliases", CHALLENGER) is None
    assert registry._require("aliases", v2).tags["driftloop.rollback_reason"] == "error_rate 0.05 > 0.01"

    registry.set_challenger("aliases", v3, actor="bot", reason="gate passed")
    promoted = registry.promote("aliases", actor="canary", reason="all steps passed")  # default: the challenger
    assert promoted.version == v3 and registry.get("aliases", CHALLENGER) is None
    old = registry._require("aliases", v1)
    assert old.tags["driftloop.former_champion"] == "true" and old.tags["driftloop.replaced_by"] == str(v3)

    restored = registry.rollback("aliases", actor="oncall", reason="complaints")
    assert restored is not None and restored.version == v1
    events = registry.history("aliases")
    assert [(e["event"], e["alias"], e["version"], e["previous"]) for e in events] == [
        ("promote", CHAMPION, v1, None),
        ("set_challenger", CHALLENGER, v2, None),
        ("rollback", CHALLENGER, None, v2),
        ("set_challenger", CHALLENGER, v3, None),
        ("promote", CHAMPION, v3, v1),
        ("rollback", CHAMPION, v1, v3),
    ]
    assert [e["actor"] for e in events] == ["alice", "bot", "canary", "bot", "canary", "oncall"]
    assert events[4]["reason"] == "all steps passed"
    # which version served when
    assert registry.champion_at("aliases", "2000-01-01") is None
    assert registry.champion_at("aliases", events[3]["at"]) == v1
    assert registry.champion_at("aliases", events[4]["at"]) == v3
    assert registry.champion_at("aliases", events[5]["at"]) == v1


def test_rollback_and_promote_without_candidates_are_user_errors(registry: ModelRegistry, trained: Trained) -> None:
    t = _named(trained, "lonely")
    v = registry.register(t.policy, t.model, t.data, t.verdict).version
    with pytest.raises(DataError, match="no challenger to promote"):
        registry.promote("lonely")
    registry.promote("lonely", v)
    with pytest.raises(DataError, match="no earlier champion"):
        registry.rollback("lonely")
    with pytest.raises(DataError, match="no version 9"):
        registry.promote("lonely", 9)


@pytest.fixture(scope="module")
def fresh_process(registry: ModelRegistry, trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two champions (the sklearn model as "fresh", a small Keras MLP as "keras") loaded and run by one fresh process.

    The process has no driftloop on its path (PYTHONPATH dropped, cwd elsewhere) and must not
    import it; both loads share its interpreter and MLflow start-up.
    """
    from components.training.trainers import train_model

    tmp = tmp_path_factory.mktemp("fresh")
    t = _named(trained, "fresh")
    registry.promote("fresh", registry.register(t.policy, t.model, t.data, t.verdict).version)
    keras_policy = trained.policy.model_copy(update={"model": "keras", "trainer": trained.policy.trainer.model_copy(update={"kind": "keras_mlp", "params": {"epochs": 2, "hidden": [4]}})})
    keras_model = train_model(keras_policy, trained.data.train)
    registry.promote("keras", registry.register(keras_policy, keras_model, trained.data, trained.verdict).version)
    rows = trained.data.holdout.head(20)
    keras_rows = rows.assign(x1=lambda f: f["x1"].round().astype(int))  # ints where floats were trained
    rows.to_parquet(tmp / "rows.parquet")
    keras_rows.to_parquet(tmp / "keras_rows.parquet")
    code = (
        "import sys, mlflow, numpy as np, pandas as pd\n"
        f"p = mlflow.pyfunc.load_model('models:/fresh@champion').predict(pd.read_parquet({str(tmp / 'rows.parquet')!r}))\n"
        f"np.save({str(tmp / 'p.npy')!r}, p)\n"
        f"k = mlflow.pyfunc.load_model('models:/keras@champion').predict(pd.read_parquet({str(tmp / 'keras_rows.parquet')!r}))\n"
        f"np.save({str(tmp / 'k.npy')!r}, k)\n"
        "assert 'components' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"MLFLOW_TRACKING_URI": registry.uri}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    return {"done": done, "rows": rows, "keras_rows": keras_rows, "keras_model": keras_model, "dir": tmp}


def test_champion_loads_in_a_fresh_process_without_driftloop(registry: ModelRegistry, trained: Trained, fresh_process: dict) -> None:
    done = fresh_process["done"]
    assert done.returncode == 0, done.stderr[-2000:]
    rows = fresh_process["rows"]
    p = np.load(fresh_process["dir"] / "p.npy")
    assert p.ndim == 1
    np.testing.assert_allclose(p, trained.model.predict(rows))
    np.testing.assert_allclose(registry.load("fresh", CHAMPION).predict(rows), p)


def test_failed_artifact_logging_leaves_no_version(registry: ModelRegistry, trained: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    t = _named(trained, "broken")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(type(t.model), "save_pyfunc", fail)
    with pytest.raises(DriftloopError, match="disk full.*no version was registered"):
        registry.register(t.policy, t.model, t.data, t.verdict, decision_id="x")
    assert registry.versions("broken") == []
    runs = mlflow.MlflowClient(registry.uri).search_runs([mlflow.MlflowClient(registry.uri).get_experiment_by_name("driftloop/broken").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_unreachable_server_is_service_unavailable(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    registry = ModelRegistry(Settings(workdir=tmp_path, mlflow_tracking_uri=uri))
    with pytest.raises(ServiceUnavailable, match=f"MLflow tracking server {uri} is unreachable.*fix: start the tracking server"):
        registry.get("churn", CHAMPION)


def test_missing_alias_is_none_and_missing_artifacts_a_data_error(registry: ModelRegistry) -> None:
    assert registry.get("never-registered", CHAMPION) is None
    assert registry.history("never-registered") == []
    with pytest.raises(DataError, match="no 'champion' version"):
        registry.baseline_metrics("never-registered")


def test_a_lost_race_settles_on_the_first_version(registry: ModelRegistry, trained: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a racing registration that did not see the other's version: the duplicate is deleted."""
    t = _named(trained, "race")
    first = registry.register(t.policy, t.model, t.data, t.verdict, decision_id="r")
    real_find = registry.find
    calls = {"n": 0}

    def blind_once(model: str, key: str):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return None if calls["n"] == 1 else real_find(model, key)

    monkeypatch.setattr(registry, "find", blind_once)
    again = registry.register(t.policy, t.model, t.data, t.verdict, decision_id="r")
    assert calls["n"] == 2  # the pre-check was blind, the settle step saw both versions
    assert again.version == first.version
    assert [v.version for v in registry.versions("race")] == [first.version]
    import mlflow

    runs = mlflow.MlflowClient(registry.uri).search_runs([mlflow.MlflowClient(registry.uri).get_experiment_by_name("driftloop/race").experiment_id])
    assert sorted(r.data.tags.get("driftloop.duplicate_of", "") for r in runs) == ["", str(first.version)]


def test_keras_champion_loads_in_a_fresh_process(fresh_process: dict) -> None:
    done = fresh_process["done"]
    assert done.returncode == 0, done.stderr[-2000:]
    p = np.load(fresh_process["dir"] / "k.npy")
    assert p.shape == (20,)
    np.testing.assert_allclose(p, fresh_process["keras_model"].predict(fresh_process["keras_rows"]), rtol=1e-5)

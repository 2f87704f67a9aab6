"""The registry against a real MLflow tracking server on PostgreSQL with served artifacts."""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from components.registry import CHAMPION, ModelRegistry
from components.settings import Settings
from components.training.datasets import build_training_set
from tests.components.registry.mlflow_fixtures import Trained, mlflow_server, trained  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    return ModelRegistry(Settings(workdir=tmp_path_factory.mktemp("client"), mlflow_tracking_uri=mlflow_server))


def _named(trained: Trained, model: str) -> Trained:
    return replace(trained, policy=trained.policy.model_copy(update={"model": model}))


def _race(n: int, target: object, args: list[tuple[object, ...]]) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(*args[i])  # type: ignore[operator]
        except Exception as exc:  # surfaced by the assertions below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    return results


def test_register_promote_and_load_from_a_fresh_process(registry: ModelRegistry, trained: Trained, tmp_path: Path) -> None:
    t = _named(trained, "served")
    info = registry.register(t.policy, t.model, t.data, t.verdict, decision_id="srv-1")
    registry.promote("served", info.version, actor="test", reason="server test")
    assert registry.get("served", CHAMPION).version == info.version  # type: ignore[union-attr]
    assert registry.baseline_metrics("served")["overall"]["auc"] == pytest.approx(t.verdict.challenger["overall"]["auc"])
    assert len(registry.reference_sample("served")) == len(t.data.holdout)
    rows = t.data.holdout.head(10)
    rows.to_parquet(tmp_path / "rows.parquet")
    code = (
        "import mlflow, numpy as np, pandas as pd\n"
        f"p = mlflow.pyfunc.load_model('models:/served@champion').predict(pd.read_parquet({str(tmp_path / 'rows.parquet')!r}))\n"
        f"np.save({str(tmp_path / 'p.npy')!r}, p)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"MLFLOW_TRACKING_URI": registry.uri}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), t.model.predict(rows))


def test_concurrent_retries_of_one_registration_make_one_version(registry: ModelRegistry, trained: Trained) -> None:
    t = _named(trained, "racy")
    results = _race(2, registry.register, [(t.policy, t.model, t.data, t.verdict, "same-decision")] * 2)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert {r.version for r in results} == {1}  # type: ignore[union-attr]
    assert [v.version for v in registry.versions("racy")] == [1]


def test_concurrent_distinct_registrations_lose_no_version(registry: ModelRegistry, trained: Trained) -> None:
    t = _named(trained, "busy")
    other = build_training_set(t.policy, "recent_window", "2025-02-01", window="10d", source=t.frame)
    results = _race(2, registry.register, [(t.policy, t.model, t.data, t.verdict, "a"), (t.policy, t.model, other, t.verdict, "b")])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.version for r in results) == [1, 2]  # type: ignore[union-attr]
    assert sorted(v.params["strategy"] for v in registry.versions("busy")) == ["full", "recent_window"]

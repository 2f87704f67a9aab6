"""The registry behind MLflow's basic-auth app: the real server on PostgreSQL, a reader and a writer.

Anonymous requests are refused; the reader (predictors) loads models but cannot register or
move aliases; the writer (pipeline steps) can. Credentials travel the way MLflow's client
reads them itself: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD.
"""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

from components.errors import ConfigError
from components.registry import CHAMPION, ModelRegistry
from components.registry.store import bootstrap_registry_auth
from components.settings import Settings
from tests.components.registry.mlflow_fixtures import (  # noqa: F401  (fixtures)
    Trained,
    running_basic_auth_mlflow,
    trained,
)

pytestmark = pytest.mark.integration
pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs the mlflow[auth] extra (Flask-WTF)")

USERS = {"reader": ("driftloop-reader", "reader-password-1"), "writer": ("driftloop-writer", "writer-password-1")}


@contextlib.contextmanager
def _auth_server(tmp: Path) -> Iterator[str]:
    with running_basic_auth_mlflow(tmp, USERS["reader"], USERS["writer"]) as server:
        assert sorted(server.created) == sorted(u for u, _ in USERS.values())  # the MLflow pod's init step
        assert bootstrap_registry_auth(server.env) == []  # a restart creates nobody twice
        yield server.url


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _auth_server(tmp_path_factory.mktemp("mlflow-auth")) as url:
        yield url


def _as(monkeypatch: pytest.MonkeyPatch, who: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USERS[who][0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", USERS[who][1])


def test_reader_loads_writer_registers_anonymous_is_refused(auth_server: str, trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    search = f"{auth_server}/api/2.0/mlflow/registered-models/search"
    assert httpx.get(search, timeout=60).status_code == 401
    assert httpx.get(search, auth=("driftloop-reader", "wrong"), timeout=60).status_code == 401
    assert httpx.get(search, auth=USERS["reader"], timeout=60).status_code == 200

    t = replace(trained, policy=trained.policy.model_copy(update={"model": "authd"}))
    registry = ModelRegistry(Settings(workdir=tmp_path, mlflow_tracking_uri=auth_server))
    _as(monkeypatch, "writer")
    # a fresh registry: MLflow's auth answers 403 for a model nobody registered; it still reads as "no champion yet"
    assert registry.get("authd", CHAMPION) is None
    first = registry.register(t.policy, t.model, t.data, t.verdict, decision_id="d-1")
    registry.promote("authd", first.version, actor="test", reason="first")

    _as(monkeypatch, "reader")
    rows = t.data.holdout.head(10)
    np.testing.assert_allclose(registry.load("authd", CHAMPION).predict(rows), t.model.predict(rows))
    assert registry.get("authd", CHAMPION).version == first.version
    with pytest.raises(ConfigError, match="refused user 'driftloop-reader': permission denied"):
        registry.register(t.policy, t.model, t.data, t.verdict, decision_id="d-2")
    with pytest.raises(ConfigError, match="permission denied"):
        registry.set_challenger("authd", first.version, actor="test", reason="reader tries")
    assert registry.get("authd", CHAMPION).version == first.version

    _as(monkeypatch, "writer")
    second = registry.register(t.policy, t.model, t.data, t.verdict, decision_id="d-3")
    registry.set_challenger("authd", second.version, actor="test", reason="writer may")
    assert registry.get("authd", "challenger").version == second.version

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(ConfigError, match="requires credentials"):
        ModelRegistry(Settings(workdir=tmp_path, mlflow_tracking_uri=auth_server)).get("authd", CHAMPION)

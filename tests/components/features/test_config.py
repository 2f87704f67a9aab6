"""One set of env names for Feast's production servers, and no silent fallback to localhost."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.errors import ConfigError
from components.features import FeastOptions, render_repo
from components.features.config import ENV, SECRET
from components.settings import Settings

pytestmark = pytest.mark.unit

SERVERS = {
    "DRIFTLOOP_FEAST_REGISTRY_URL": "postgresql+psycopg2://feast:pw@registry.db:5432/feast",
    "DRIFTLOOP_FEAST_REDIS": "redis://cache.svc:6380/3",
    "DRIFTLOOP_FEAST_OFFLINE_URL": "postgresql://loader:p%40ss@warehouse.db:5433/offline?sslmode=require",
}


def test_from_env_reads_the_three_server_names() -> None:
    options = FeastOptions.from_env({**SERVERS, "DRIFTLOOP_FEAST_PROJECT": "team_b"}, production=True)
    assert options.registry_url == SERVERS["DRIFTLOOP_FEAST_REGISTRY_URL"]
    assert options.redis == "cache.svc:6380,db=3"
    assert options.offline_url == SERVERS["DRIFTLOOP_FEAST_OFFLINE_URL"]
    assert options.project == "team_b"


@pytest.mark.parametrize("missing", sorted(SERVERS))
def test_production_names_the_missing_variable_and_secret_key(missing: str) -> None:
    env = {k: v for k, v in SERVERS.items() if k != missing}
    key = next(k for var, k, _ in ENV.values() if var == missing)
    with pytest.raises(ConfigError) as err:
        FeastOptions.from_env(env, production=True)
    message = str(err.value)
    assert message.startswith(f"{missing} is not set") and f"key {key} to Secret {SECRET}" in message
    assert "\n" not in message and "127.0.0.1" not in message


def test_empty_value_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="DRIFTLOOP_FEAST_REDIS is not set"):
        FeastOptions.from_env({**SERVERS, "DRIFTLOOP_FEAST_REDIS": " "}, production=True)


def test_online_only_readers_may_go_without_the_offline_url() -> None:
    env = {k: v for k, v in SERVERS.items() if k != "DRIFTLOOP_FEAST_OFFLINE_URL"}
    assert FeastOptions.from_env(env, production=True, offline=False).offline_url == ""
    with pytest.raises(ConfigError, match="DRIFTLOOP_FEAST_REGISTRY_URL is not set"):
        FeastOptions.from_env({"DRIFTLOOP_FEAST_REDIS": "r:6379"}, production=True, offline=False)


def test_local_config_keeps_the_embedded_defaults() -> None:
    assert FeastOptions.from_env({}) == FeastOptions()


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql://u@h", "postgresql://u@h:99999/db", "warehouse.db:5432"])
def test_bad_offline_url_names_the_variable(url: str) -> None:
    with pytest.raises(ConfigError, match="DRIFTLOOP_FEAST_OFFLINE_URL .* (is not a postgresql|has a bad port).*fix: set DRIFTLOOP_FEAST_OFFLINE_URL"):
        FeastOptions.from_env({**SERVERS, "DRIFTLOOP_FEAST_OFFLINE_URL": url}, production=True)


def test_offline_url_password_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        FeastOptions(offline_url="mysql://u:hunter2@h/db")
    assert "hunter2" not in str(err.value)


def _definitions(repo: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"_defs_{abs(hash(repo))}", repo / "definitions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_production_render_uses_the_postgres_offline_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in SERVERS.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("DRIFTLOOP_FEAST_PROJECT", "Team_B")
    repo = render_repo(Settings(workdir=tmp_path / "pod", feast_config="production"))
    config = yaml.safe_load((repo / "feature_store.yaml").read_text())
    assert config["registry"]["path"] == SERVERS["DRIFTLOOP_FEAST_REGISTRY_URL"]
    assert config["online_store"]["connection_string"] == "cache.svc:6380,db=3"
    assert config["offline_store"] == {"type": "postgres", "host": "warehouse.db", "port": 5433, "database": "offline",
                                       "db_schema": "public", "user": "loader", "password": "p@ss", "sslmode": "require"}
    views = _definitions(repo).views
    assert views["churn"].batch_source.get_table_query_string() == "team_b_churn_features"
    assert type(views["fraud"].batch_source).__name__ == "PostgreSQLSource"
    assert not (tmp_path / "pod" / "data").exists(), "production keeps no feature data in the pod"


def test_production_render_without_env_fails_instead_of_using_localhost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in SERVERS:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="DRIFTLOOP_FEAST_REGISTRY_URL is not set"):
        render_repo(Settings(workdir=tmp_path / "pod", feast_config="production"))


def test_local_render_keeps_file_sources(tmp_path: Path) -> None:
    settings = Settings(workdir=tmp_path / "work")
    repo = render_repo(settings)
    config = yaml.safe_load((repo / "feature_store.yaml").read_text())
    assert config["offline_store"] == {"type": "file"}
    assert _definitions(repo).views["churn"].batch_source.path == str(settings.data_dir / "feast" / "churn_features.parquet")


def test_table_names_fit_postgres() -> None:
    from components.features.config import table_name

    assert table_name("driftloop", "recsys", "labels") == "driftloop_recsys_labels"
    with pytest.raises(ConfigError, match="too long.*shorten DRIFTLOOP_FEAST_PROJECT"):
        table_name("p" * 50, "concept", "features")

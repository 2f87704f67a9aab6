"""Feast with the production config: SQL registry on the local PostgreSQL, Redis online store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from components.data.scenarios import generate, write_scenario
from components.features import (
    FeastOptions,
    apply,
    ingest,
    materialize,
    online_features,
    open_store,
    training_set,
)
from components.policy import load_policy
from components.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def production(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[tuple[Settings, FeastOptions]]:
    """A work directory on the production config with its own Feast project; torn down after."""
    settings = Settings(workdir=tmp_path / "work", feast_config="production")
    options = FeastOptions(
        project=f"dl_{uuid.uuid4().hex[:10]}",
        registry_url=postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1),
        redis=FeastOptions.redis_from_url(redis_url),
        offline_url=postgres_url,
    )
    apply(settings, options)
    yield settings, options
    open_store(settings).teardown()


def test_registry_in_postgres_and_online_in_redis(production: tuple[Settings, FeastOptions], postgres_url: str, redis_url: str) -> None:
    import psycopg2
    import redis

    settings, options = production
    write_scenario("churn", settings.data_dir, rows=24 * 40, seed=3)
    ingest("churn", settings)
    materialize("churn", "2024-01-01", "2026-01-01", settings)

    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT feature_service_name FROM feature_services WHERE project_id = %s", (options.project,))
        assert "churn_v1" in {r[0] for r in cur.fetchall()}
    client = redis.Redis.from_url(redis_url)
    assert sum(1 for _ in client.scan_iter(match=f"*{options.project}*", count=1000)) >= 40

    policy = load_policy("churn")
    ids = [3, 17, 40]
    online = online_features(policy, ids, settings=settings)
    last = pd.Timestamp("2025-12-01", tz="UTC")
    offline = training_set(policy, last, last + pd.DateOffset(months=1), settings=settings).set_index("customer_id").loc[ids].reset_index()
    cols = ["customer_id", *policy.features, *policy.categorical_features]
    pd.testing.assert_frame_equal(online[cols], offline[cols], check_dtype=False)
    src = generate("churn", rows=24 * 40, seed=3)
    assert list(online["monthly_charges"]) == list(src[src.event_timestamp == last].set_index("customer_id").loc[ids, "monthly_charges"])


def test_production_and_local_agree(production: tuple[Settings, FeastOptions], tmp_path: Path) -> None:
    settings, _ = production
    local = Settings(workdir=tmp_path / "local")
    apply(local)
    for s in (settings, local):
        write_scenario("credit", s.data_dir, rows=2_400, seed=9)
        ingest("credit", s)
    policy = load_policy("credit")
    a = training_set(policy, "2024-01-01", "2024-07-01", cohort="subprime", settings=settings)
    b = training_set(policy, "2024-01-01", "2024-07-01", cohort="subprime", settings=local)
    assert len(a) > 50 and set(a["segment"]) == {"subprime"}
    pd.testing.assert_frame_equal(a, b)


def test_redis_down_is_service_unavailable(tmp_path: Path, postgres_url: str) -> None:
    from components.errors import ServiceUnavailable
    from tests.conftest import free_port

    settings = Settings(workdir=tmp_path / "work", feast_config="production")
    options = FeastOptions(
        project=f"dl_{uuid.uuid4().hex[:10]}",
        registry_url=postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1),
        redis=f"127.0.0.1:{free_port()}",  # nothing listens here
        offline_url=postgres_url,
    )
    apply(settings, options)
    write_scenario("churn", settings.data_dir, rows=48, seed=0)
    ingest("churn", settings)
    with pytest.raises(ServiceUnavailable, match="read the online store.*Connection refused.*start PostgreSQL"):
        online_features(load_policy("churn"), [1], settings=settings)


def _server_env(options: FeastOptions, offline_url: str) -> dict[str, str]:
    """What a pod gets from the driftloop-settings ConfigMap and the driftloop-feast Secret."""
    return {
        "DRIFTLOOP_FEAST_CONFIG": "production",
        "DRIFTLOOP_FEAST_PROJECT": options.project,
        "DRIFTLOOP_FEAST_REGISTRY_URL": options.registry_url,
        "DRIFTLOOP_FEAST_REDIS": options.redis,
        "DRIFTLOOP_FEAST_OFFLINE_URL": offline_url,
    }


def test_two_pods_share_only_the_services(tmp_path: Path, postgres_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A load pod ingests and materializes; another pod, with its own empty workdir and only the
    env, reads the same labels, point-in-time features and online features."""
    import numpy as np
    import psycopg

    from components.features import materialize_incremental
    from components.features.config import table_name

    options = FeastOptions(project=f"dl_{uuid.uuid4().hex[:10]}", registry_url=postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                           redis=FeastOptions.redis_from_url(redis_url), offline_url=postgres_url)
    for var, value in _server_env(options, postgres_url).items():
        monkeypatch.setenv(var, value)
    loader = Settings.from_env({"DRIFTLOOP_WORKDIR": str(tmp_path / "load-pod"), "DRIFTLOOP_FEAST_CONFIG": "production"})
    reader = Settings.from_env({"DRIFTLOOP_WORKDIR": str(tmp_path / "step-pod"), "DRIFTLOOP_FEAST_CONFIG": "production"})
    rows = 24 * 60
    try:
        apply(loader)
        write_scenario("churn", loader.data_dir, rows=rows, seed=11)
        ingest("churn", loader)
        materialize_incremental("churn", "2026-06-01", loader)

        with psycopg.connect(postgres_url) as conn:
            counts = {kind: conn.execute(f"SELECT count(*) FROM {table_name(options.project, 'churn', kind)}").fetchone()[0] for kind in ("features", "labels")}
        assert counts == {"features": rows, "labels": rows}, "features and labels live in the shared database"

        policy = load_policy("churn")
        everything = training_set(policy, "2024-01-01", "2026-01-01", settings=reader)
        assert len(everything) == rows
        assert not list((tmp_path / "step-pod").rglob("*.parquet")), "the reading pod holds no data files"
        pd.testing.assert_frame_equal(everything, training_set(policy, "2024-01-01", "2026-01-01", settings=loader))

        ids = sorted(np.random.default_rng(0).choice(everything["customer_id"].unique(), size=15, replace=False).tolist())
        last = pd.Timestamp("2025-12-01", tz="UTC")
        offline = training_set(policy, last, last + pd.DateOffset(months=1), settings=reader).set_index("customer_id").loc[ids].reset_index()
        online = online_features(policy, ids, settings=reader)
        cols = ["customer_id", *policy.features, *policy.categorical_features]
        pd.testing.assert_frame_equal(online[cols], offline[cols], check_dtype=False)
        src = generate("churn", rows=rows, seed=11)
        expected = src[src.event_timestamp == last].set_index("customer_id").loc[ids, "total_charges"]
        assert online["total_charges"].tolist() == pytest.approx(expected.tolist())
    finally:
        open_store(loader).teardown()


def test_append_upserts_and_incremental_materialize(production: tuple[Settings, FeastOptions]) -> None:
    from components.features import materialize_incremental

    settings, _ = production
    df = generate("churn", rows=24 * 4, seed=1)
    cut = pd.Timestamp("2025-01-01", tz="UTC")
    first, second = df[df.event_timestamp < cut], df[df.event_timestamp >= cut]
    policy = load_policy("churn")
    ingest("churn", settings, frame=first)
    materialize_incremental("churn", "2025-01-01", settings)
    assert online_features(policy, [2], settings=settings)["tenure_months"].item() == first[first.customer_id == 2]["tenure_months"].max()
    changed = second.copy()
    ingest("churn", settings, frame=pd.concat([first.tail(4).assign(tenure_months=999), changed]), append=True)
    materialize_incremental("churn", "2026-01-01", settings)
    assert online_features(policy, [2], settings=settings)["tenure_months"].item() == df[df.customer_id == 2]["tenure_months"].max()
    got = training_set(policy, "2024-01-01", "2026-01-01", settings=settings)
    assert len(got) == len(df), "a re-sent row replaces the stored one"
    assert (got["tenure_months"] == 999).sum() == 4


def test_offline_work_without_offline_url_names_it(tmp_path: Path, postgres_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An online-only pod (transformer) needs no offline URL; a training set there says what to set."""
    from components.errors import ConfigError

    options = FeastOptions(project=f"dl_{uuid.uuid4().hex[:10]}", registry_url=postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                           redis=FeastOptions.redis_from_url(redis_url), offline_url=postgres_url)
    env = _server_env(options, "")
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    pod = Settings(workdir=tmp_path / "transformer", feast_config="production")
    store = open_store(pod)  # online only: renders without the offline store
    assert store.config.offline_store.type == "file"
    with pytest.raises(ConfigError, match="DRIFTLOOP_FEAST_OFFLINE_URL is not set.*key offline_url to Secret driftloop-feast"):
        training_set(load_policy("churn"), "2024-01-01", "2024-02-01", settings=pod)
    with pytest.raises(ConfigError, match="DRIFTLOOP_FEAST_OFFLINE_URL is not set"):
        ingest("churn", pod, frame=generate("churn", rows=24, seed=0))


def test_offline_store_down_is_service_unavailable(tmp_path: Path, postgres_url: str, redis_url: str) -> None:
    from components.errors import ServiceUnavailable
    from tests.conftest import free_port

    settings = Settings(workdir=tmp_path / "work", feast_config="production")
    options = FeastOptions(project=f"dl_{uuid.uuid4().hex[:10]}", registry_url=postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                           redis=FeastOptions.redis_from_url(redis_url), offline_url=f"postgresql://postgres@127.0.0.1:{free_port()}/feast")
    apply(settings, options)  # the registry is up; the offline store is not needed to register
    with pytest.raises(ServiceUnavailable, match="ingest churn into the offline store: OperationalError.*offline store"):
        ingest("churn", settings, frame=generate("churn", rows=24, seed=0))
    with pytest.raises(ServiceUnavailable, match="read the churn labels"):
        training_set(load_policy("churn"), "2024-01-01", "2024-02-01", settings=settings)

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

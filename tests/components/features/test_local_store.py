"""Feast with the local config (files + SQLite): point-in-time training sets and online lookups."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from components.data.scenarios import SCENARIOS, generate
from components.errors import ConfigError, DataError, ServiceUnavailable
from components.features import apply, ingest, online_features, training_set
from components.features.config import FeastOptions
from components.features.store import labels_path
from components.policy import load_policy
from components.settings import REPO_ROOT, Settings
from driftloop.cli import main
from tests.conftest import free_port

pytestmark = pytest.mark.unit

Local = tuple[Settings, dict[str, pd.DataFrame]]


def test_repo_rendered_outside_git_tree(feast_local: Local) -> None:
    settings, _ = feast_local
    repo = settings.workdir / "feature_repo"
    assert (repo / "feature_store.yaml").exists() and (repo / "definitions.py").exists()
    text = (repo / "feature_store.yaml").read_text()
    assert str(settings.workdir) in text and "sqlite" in text
    assert not (REPO_ROOT / "feature_repo" / "data").exists()
    assert not (REPO_ROOT / "feature_repo" / "data_dir.txt").exists()


@pytest.mark.parametrize("name", ["churn", "credit", "recsys", "fraud"])
def test_training_set_matches_generated_rows(feast_local: Local, name: str) -> None:
    """Exact-time point-in-time join returns each event's own feature values and label."""
    settings, raw = feast_local
    policy = load_policy(name)
    spec = SCENARIOS[name]
    start, end = spec.start, spec.onset
    got = training_set(policy, start, end, settings=settings)
    cols = [policy.entity, policy.timestamp, *policy.features, *policy.categorical_features]
    if policy.segment_column and policy.segment_column not in cols:
        cols.append(policy.segment_column)
    assert list(got.columns) == [*cols, policy.label]
    src = raw[name]
    want = src[(src[spec.timestamp] >= start) & (src[spec.timestamp] < end) & (src["label_timestamp"] <= end)]
    want = want[[*cols, policy.label]].sort_values([policy.timestamp, policy.entity], ignore_index=True)
    assert len(got) == len(want) > 0
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_labels_not_yet_known_are_left_out(feast_local: Local) -> None:
    settings, raw = feast_local
    policy = load_policy("fraud")
    end = pd.Timestamp("2025-03-05T12:00", tz="UTC")
    got = training_set(policy, "2025-03-05T00:00", end, settings=settings)
    src = raw["fraud"]
    in_window = src[(src.event_timestamp >= pd.Timestamp("2025-03-05", tz="UTC")) & (src.event_timestamp < end)]
    assert len(got) == (in_window.label_timestamp <= end).sum() < len(in_window)
    later = training_set(policy, "2025-03-05T00:00", end, settings=settings, known_by=end + pd.Timedelta(hours=6))
    assert len(later) == len(in_window)


def test_online_equals_offline_for_same_entity_and_time(feast_local: Local) -> None:
    settings, raw = feast_local
    policy = load_policy("churn")
    ids = [1, 7, 42, 150]
    online = online_features(policy, ids, settings=settings)
    last_month = SCENARIOS["churn"].end
    offline = training_set(policy, last_month, last_month + pd.DateOffset(months=1), settings=settings)
    offline = offline.set_index(policy.entity).loc[ids].reset_index()
    cols = [policy.entity, *policy.features, *policy.categorical_features]
    assert list(online[policy.entity]) == ids
    pd.testing.assert_frame_equal(online[cols], offline[cols], check_dtype=False)
    # and both are the generator's December values, not an earlier month's
    src = raw["churn"]
    dec = src[src.event_timestamp == last_month].set_index("customer_id").loc[ids]
    assert list(online["tenure_months"]) == list(dec["tenure_months"])


def test_online_returns_latest_interaction_per_user(feast_local: Local) -> None:
    settings, raw = feast_local
    policy = load_policy("recsys")
    src = raw["recsys"]
    latest = src.sort_values("event_timestamp").groupby("user_id").tail(1).set_index("user_id")
    ids = list(latest.index[:5])
    got = online_features(policy, ids, settings=settings).set_index("user_id")
    assert list(got["item_category"]) == list(latest.loc[ids, "item_category"])
    assert list(got["user_cohort"]) == list(latest.loc[ids, "user_cohort"])


@pytest.mark.parametrize(("name", "cohort"), [("credit", "subprime"), ("recsys", "casual")])
def test_cohort_filter(feast_local: Local, name: str, cohort: str) -> None:
    settings, raw = feast_local
    policy = load_policy(name)
    spec = SCENARIOS[name]
    col = policy.segment_column
    assert col is not None
    got = training_set(policy, spec.start, spec.onset, cohort=cohort, settings=settings)
    everyone = training_set(policy, spec.start, spec.onset, settings=settings)
    assert set(got[col]) == {cohort}
    assert len(got) == (everyone[col] == cohort).sum()
    assert 0 < len(got) < len(everyone)


def test_point_in_time_never_uses_a_later_value(tmp_path: Path) -> None:
    """Features at t-14d and t+14d exist for the same customer; the join must use t-14d."""
    settings = Settings(workdir=tmp_path / "work")
    apply(settings)
    base = generate("churn", rows=24 * 3, seed=0)
    rows = base[base.customer_id == 1].iloc[[0, 1]].copy()
    rows["event_timestamp"] = pd.to_datetime(["2025-01-01", "2025-03-01"], utc=True)
    rows["tenure_months"] = [10, 99]
    rows["contract"] = ["one_year", "two_year"]
    ingest("churn", settings, frame=rows)
    event = pd.Timestamp("2025-02-15", tz="UTC")
    pd.DataFrame({"customer_id": [1], "event_timestamp": [event], "churned": [1], "label_timestamp": [event]}).to_parquet(labels_path("churn", settings))
    got = training_set(load_policy("churn"), "2025-02-01", "2025-03-01", settings=settings)
    assert got[["tenure_months", "contract"]].values.tolist() == [[10, "one_year"]]
    # an event after both rows sees the later one
    late = pd.Timestamp("2025-03-20", tz="UTC")
    pd.DataFrame({"customer_id": [1], "event_timestamp": [late], "churned": [0], "label_timestamp": [late]}).to_parquet(labels_path("churn", settings))
    got = training_set(load_policy("churn"), "2025-03-01", "2025-04-01", settings=settings)
    assert got[["tenure_months", "contract"]].values.tolist() == [[99, "two_year"]]


def test_append_ingest_and_incremental_materialize(tmp_path: Path) -> None:
    from components.features import materialize_incremental

    settings = Settings(workdir=tmp_path / "work")
    apply(settings)
    df = generate("churn", rows=24 * 4, seed=1)
    cut = pd.Timestamp("2025-01-01", tz="UTC")
    first, second = df[df.event_timestamp < cut], df[df.event_timestamp >= cut]
    policy = load_policy("churn")
    ingest("churn", settings, frame=first)
    materialize_incremental("churn", "2025-01-01", settings)
    assert online_features(policy, [2], settings=settings)["tenure_months"].item() == first[first.customer_id == 2]["tenure_months"].max()
    ingest("churn", settings, frame=second, append=True)
    materialize_incremental("churn", "2026-01-01", settings)
    assert online_features(policy, [2], settings=settings)["tenure_months"].item() == df[df.customer_id == 2]["tenure_months"].max()
    assert len(training_set(policy, "2024-01-01", "2026-01-01", settings=settings)) == len(df)


def test_user_errors(feast_local: Local, tmp_path: Path) -> None:
    settings, _ = feast_local
    churn = load_policy("churn")
    with pytest.raises(ConfigError, match="feature service 'churn_v9' is not registered.*churn_v1"):
        training_set(churn.model_copy(update={"feature_service": "churn_v9"}), "2024-01-01", "2024-06-01", settings=settings)
    with pytest.raises(ConfigError, match="cohort 'gold' is not one of segment"):
        training_set(load_policy("credit"), "2024-01-01", "2024-06-01", cohort="gold", settings=settings)
    with pytest.raises(ConfigError, match="has no segments"):
        training_set(churn, "2024-01-01", "2024-06-01", cohort="x", settings=settings)
    with pytest.raises(DataError, match="no labelled churn rows"):
        training_set(churn, "2030-01-01", "2030-02-01", settings=settings)
    with pytest.raises(DataError, match="no labels ingested for 'concept'.*driftloop features ingest concept"):
        training_set(load_policy("concept"), "2025-04-01", "2025-04-02", settings=settings)
    with pytest.raises(DataError, match="driftloop scenario concept"):
        ingest("concept", settings)


def test_production_servers_down_is_service_unavailable(tmp_path: Path) -> None:
    settings = Settings(workdir=tmp_path / "work", feast_config="production")
    port = free_port()
    options = FeastOptions(project="dl_down", registry_url=f"postgresql+psycopg2://postgres@127.0.0.1:{port}/feast", redis=f"127.0.0.1:{port}")
    with pytest.raises(ServiceUnavailable, match="Feast could not reach its server.*start PostgreSQL"):
        apply(settings, options)


def test_cli_apply_ingest_materialize_get(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "w"
    assert main(["scenario", "churn", "--out", str(work / "data"), "--rows", "48", "--seed", "2"]) == 0
    assert main(["features", "apply", "--workdir", str(work)]) == 0
    assert main(["features", "ingest", "churn", "--workdir", str(work)]) == 0
    assert main(["features", "materialize", "churn", "--end", "2026-01-01", "--workdir", str(work)]) == 0
    capsys.readouterr()
    assert main(["features", "get", "churn", "2", "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    dec = generate("churn", rows=48, seed=2).query("customer_id == 2").iloc[-1]
    assert "tenure_months" in out and str(dec["tenure_months"]) in out and dec["contract"] in out
    assert main(["features", "training-set", "churn", "--start", "2024-01-01", "--end", "2024-07-01", "--workdir", str(work)]) == 0
    assert "12 rows" in capsys.readouterr().out
    assert main(["features", "get", "churn", "1", "--workdir", str(tmp_path / "empty")]) == 2
    assert "not registered" in capsys.readouterr().err

"""A cohort-only canary end to end on real processes (router + KServe predictors + real MLflow registry):
only cohort b's traffic is split, the checks are analysed on cohort b, other cohorts' requests never
reach the challenger (asserted on the prediction log), and the outcome moves only b's aliases."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from serving_fixtures import CATEGORICAL, MODEL, NUMERIC, make_data, policy_dict

from components.policy import policy_from_dict
from components.settings import Settings
from serving.canary.cohort import cohort_labels, requests_by_cohort
from serving.canary.local import LocalBackend
from serving.canary.rollout import roll_out
from serving.prediction_log import read_log
from serving.prometheus import DirectSource
from serving.traffic import ReplayTraffic

pytestmark = pytest.mark.e2e

CHECKS = [{"metric": "error_rate", "max": 0.05}, {"metric": "accuracy", "max_drop": 0.1}]


@pytest.fixture
def cohort_registry(registry):
    yield registry
    client = registry._client()
    for alias in ("champion-b", "challenger-b"):
        with contextlib.suppress(Exception):
            client.delete_registered_model_alias(MODEL, alias)


def cohort_rollout(store, registry, tmp_path: Path, version: str) -> tuple[object, pd.DataFrame, LocalBackend, list]:
    policy = policy_from_dict(policy_dict(checks=CHECKS))
    log_dir = tmp_path / "predlog"
    backend = LocalBackend(MODEL, f"models:/{MODEL}@champion", tracking_uri=store.tracking_uri, log_dir=log_dir,
                           work_dir=tmp_path / "servers", cohort_column="segment", canary_cohort="b", drain_seconds=0.2,
                           ready_timeout=600)  # a loaded shared machine can take minutes to start a predictor
    backend.start(timeout=600)
    started = pd.Timestamp.now(tz="UTC")
    traffic = ReplayTraffic(backend.url, MODEL, make_data(20000, 5), [*NUMERIC, *CATEGORICAL], label="label",
                            label_columns=["segment"], threads=4)
    with traffic:
        settings = Settings(workdir=tmp_path / "work", mlflow_tracking_uri=store.tracking_uri)
        result = roll_out(policy, settings, backend, challenger_uri=f"models:/{MODEL}/{version}",
                          labels=cohort_labels(traffic.labels, "segment", "b"), log_dir=log_dir, registry=registry.for_cohort("b"),
                          metrics_source=DirectSource(backend.metrics_targets))
    time.sleep(0.5)  # the servers flush their prediction log every 0.2 s
    return result, read_log(log_dir, MODEL, start=started), backend, traffic.failures()


def test_a_good_cohort_challenger_becomes_that_cohorts_specialist_only(store, cohort_registry, tmp_path: Path) -> None:
    good1, good2 = store.versions["good1"], store.versions["good2"]
    result, log, backend, failures = cohort_rollout(store, cohort_registry, tmp_path, good2)
    try:
        assert result.outcome == "promoted", result.reason
        assert failures == []
        served = requests_by_cohort(log, "segment")
        assert set(served[good2]) == {"b"} and served[good2]["b"] > 40  # other cohorts never reached the challenger
        assert served[good1]["a"] > 100 and served[good1]["b"] > 20  # a stayed on the global champion throughout
        assert cohort_registry.get(MODEL, "champion-b").version == int(good2)
        assert cohort_registry.get(MODEL, "champion").version == int(good1)  # the global champion is untouched
        last = cohort_registry.history(MODEL)[-1]
        assert (last["event"], last["alias"], last["version"], last["cohort"]) == ("promote", "champion-b", int(good2), "b")
        labelled = [c for s in result.steps for c in s["checks"] if c["metric"] == "accuracy"]
        assert labelled  # analysed on cohort b's labelled requests only (cohort_labels)
        with httpx.Client() as c:  # after the promotion the router sends b to its specialist, a to the global champion
            row = {"x1": 0.1, "x2": 0.2, "x3": 0.3}
            to_b = c.post(f"{backend.url}/v1/models/{MODEL}:predict", json={"instances": [row | {"segment": "b"}]})
            to_a = c.post(f"{backend.url}/v1/models/{MODEL}:predict", json={"instances": [row | {"segment": "a"}]})
        assert (to_b.headers["x-served-by"], to_b.headers["x-model-version"]) == ("champion-b", good2)
        assert (to_a.headers["x-served-by"], to_a.headers["x-model-version"]) == ("champion", good1)
    finally:
        backend.close()


def test_a_bad_cohort_challenger_is_rolled_back_and_the_cohort_returns_to_the_global_champion(store, cohort_registry, tmp_path: Path) -> None:
    good1, bad = store.versions["good1"], store.versions["bad"]
    result, log, backend, _ = cohort_rollout(store, cohort_registry, tmp_path, bad)
    try:
        assert result.outcome == "rolled_back" and "accuracy" in result.reason, result.reason
        served = requests_by_cohort(log, "segment")
        assert set(served.get(bad, {})) <= {"b"}  # whatever the challenger served was cohort b's
        assert cohort_registry.get(MODEL, "champion-b") is None and cohort_registry.get(MODEL, "champion").version == int(good1)
        assert backend.cohorts == {} and backend.challenger is None  # the copy started for the canary is gone
        state = httpx.get(f"{backend.url}/healthz").json()
        assert (state["routes"], state["challenger"]) == ({}, None)
    finally:
        backend.close()

"""The rehearsal cluster's services, each used the way the pipelines use it: a pod finds the API
through its kubeconfig, Prometheus fires the manifests' alerts from pushed metrics, the webhook
receiver records posts, and users' traffic leaves a prediction log and delayed labels that the
canary step's label join (components/kfp/canary.py store_labels) puts together."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from components.settings import Settings
from tests.rehearsal.cluster import WRITER, Cluster, running_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


def eventually(check: Callable[[], bool], timeout: float = 45.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def step_settings(cluster: Cluster, workdir: Path) -> Settings:
    """What a fully wired pipeline step reads from its environment."""
    return Settings.from_env({**cluster.env(), "DRIFTLOOP_WORKDIR": str(workdir)})


def test_contract_names_and_the_dev_overlay(cluster: Cluster) -> None:
    from pipelines import platform

    assert set(cluster.secrets) >= {platform.MLFLOW_SECRET, platform.FEAST_SECRET, platform.LEDGER_SECRET, platform.WEBHOOK_SECRET}
    assert set(cluster.secrets[platform.FEAST_SECRET]) == set(platform._FEAST_ENV)
    settings = cluster.config_maps[platform.SETTINGS_CONFIG_MAP]
    assert settings["DRIFTLOOP_MLFLOW_TRACKING_URI"] == cluster.mlflow_url and settings["DRIFTLOOP_FEAST_CONFIG"] == "production"
    assert "DRIFTLOOP_ROLLOUT_STEPS" not in settings
    dev = cluster.overlay("dev")[platform.SETTINGS_CONFIG_MAP]
    assert dev["DRIFTLOOP_ROLLOUT_STEPS"] == "50,100" and dev["DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS"] == "10"
    assert dev["DRIFTLOOP_MLFLOW_TRACKING_URI"] == cluster.mlflow_url  # the overlay does not move the services
    assert httpx.get(f"{cluster.mlflow_url}/api/2.0/mlflow/registered-models/search", timeout=30).status_code == 401  # auth is on


def test_pushed_monitor_metric_fires_the_drift_alert(cluster: Cluster, tmp_path: Path) -> None:
    from components.metrics_push import push_monitor

    assert "DriftloopDataDrift" not in cluster.alerts()
    assert push_monitor(step_settings(cluster, tmp_path), "churn", [{"name": "feature_drift", "type": "feature_drift", "fired": True}])
    assert eventually(lambda: cluster.alerts().get("DriftloopDataDrift") == "firing"), cluster.alerts()


def test_webhook_receiver_records_the_post(cluster: Cluster) -> None:
    before = len(cluster.webhooks())
    assert httpx.post(cluster.webhook_url, json={"text": "churn: retrain"}, timeout=10).status_code == 200
    assert cluster.webhooks()[before:] == [{"text": "churn: retrain"}]


def test_traffic_leaves_a_log_and_delayed_labels_the_canary_step_joins(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from components.data.scenarios import generate
    from components.features.store import read_labels
    from components.kfp.canary import store_labels
    from components.policy import resolve_policy
    from tests.serving.serving_fixtures import register

    policy = resolve_policy("churn")
    frame = generate("churn", seed=0)
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = WRITER  # the writer registers
    try:
        version = register(cluster.mlflow_url, None, 0, data=frame.sample(2000, random_state=0), numeric=policy.features,
                           categorical=policy.categorical_features, label=policy.label, name=policy.model)
    finally:
        del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
    name = cluster.serve("churn", version)
    isvc = cluster.isvc(name)
    assert isvc["status"]["url"].startswith("http://127.0.0.1:")

    # a pod finds the API server with nothing but what the kubelet gives it
    probe = subprocess.run([sys.executable, "-c", "from serving.canary.k8s import KubernetesBackend as K; print(K('churn', 'driftloop').current_traffic())"],
                           env={**cluster.pod_env, "PATH": os.environ["PATH"]}, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip() == "100", probe.stderr[-2000:]  # the manifests' canaryTrafficPercent: 100 (no split)

    since = pd.Timestamp.now(tz="UTC")
    rows = frame[frame["event_timestamp"] >= "2025-01-01"].head(300)
    with cluster.traffic("churn", name, rows, label_delay=1.0) as run:
        time.sleep(4)
    assert run.sent > 0 and run.failed == 0
    assert run.by_revision == {isvc["status"]["components"]["predictor"]["latestCreatedRevision"]: run.sent}
    assert run.labels_written == run.sent  # every answered row's outcome, after the delay

    for key, value in cluster.env().items():  # the step's environment: Feast reads its servers from it (FeastOptions.from_env)
        monkeypatch.setenv(key, value)
    settings = step_settings(cluster, tmp_path / "step")
    now = pd.Timestamp.now(tz="UTC")
    labels = read_labels("churn", settings, since, now, now)
    assert len(labels) == run.sent
    delay = (labels["label_timestamp"] - labels[policy.timestamp]).dt.total_seconds()
    assert delay.round(3).eq(1.0).all()
    assert read_labels("churn", settings, since, now, since + pd.Timedelta(milliseconds=500)).empty  # not known before the delay

    joined = eventually(lambda: len(store_labels(policy, settings, str(cluster.volumes["driftloop-prediction-log"]), since)()) == run.sent, 20)
    got = store_labels(policy, settings, str(cluster.volumes["driftloop-prediction-log"]), since)()
    assert joined, (len(got), run.sent)
    assert got["request_id"].is_unique


def test_pushed_rollbacks_fire_the_rollback_alert(cluster: Cluster, tmp_path: Path) -> None:
    """A second rollback fires DriftloopCanaryRolledBack: Prometheus evaluates the manifests' rule on the pushed counter."""
    from components.metrics_push import push_rollout

    class Result:
        outcome = "rolled_back"

    settings = step_settings(cluster, tmp_path)
    assert push_rollout(settings, "credit", Result())
    time.sleep(3)  # scraped at 1 before the next push
    assert push_rollout(settings, "credit", Result())
    assert eventually(lambda: cluster.alerts().get("DriftloopCanaryRolledBack") == "firing", 30), cluster.alerts()


def test_the_first_rollback_fires_the_rollback_alert(cluster: Cluster, tmp_path: Path) -> None:
    """The canary step pushes the counters at 0 before traffic moves, so the first rollback is an increase."""
    from components.kfp.canary import canary_rollout
    from components.policy import resolve_policy

    class Result:
        outcome = "rolled_back"

        def to_markdown(self) -> str:
            return "rolled back"

    def roll_out(*args: object, **kwargs: object) -> Result:
        time.sleep(3)  # the steps take a while: Prometheus scrapes the counters' 0 meanwhile
        return Result()

    policy = resolve_policy("churn")
    canary_rollout(policy, step_settings(cluster, tmp_path), "kubernetes", labels="none", roll_out=roll_out)
    assert eventually(lambda: "churn" in firing_models(cluster, "DriftloopCanaryRolledBack"), 20)


def firing_models(cluster: Cluster, alert: str) -> set[str]:
    body = httpx.get(f"{cluster.prometheus_url}/api/v1/alerts", timeout=10).json()
    return {a["labels"].get("model", "") for a in body["data"]["alerts"] if a["labels"]["alertname"] == alert and a["state"] == "firing"}

"""The stand-in KServe controller: real predictor pods per revision, the split by canaryTrafficPercent,
KServe-shaped status, the inference logger into the log sink, container restarts.

The product's Kubernetes backend (serving/canary/k8s.py, the real kubernetes client) drives it.
A SQLite registry (serving_fixtures.store) keeps this module light; the full cluster is in
test_cluster.py.
"""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.canary.k8s import GROUP, PLURAL, VERSION, KubernetesBackend
from serving.prediction_log import read_log
from serving.traffic import ReplayTraffic
from tests.rehearsal.cluster import LOG_SINK_SERVICE, NAMESPACE, log_sink
from tests.rehearsal.kserve_controller import KServeController, predictor_isvc
from tests.serving.k8s_standin import crd_validator
from tests.serving.serving_fixtures import (  # noqa: F401  (store is a fixture)
    CATEGORICAL,
    MODEL,
    NUMERIC,
    REPO_ROOT,
    Store,
    free_port,
    make_data,
    start_prometheus,
    stop_server,
    store,
)

pytestmark = pytest.mark.integration


@dataclass
class Kube:
    controller: KServeController
    api_client: Any
    prometheus_url: str
    log_dir: Path


@pytest.fixture(scope="module")
def kube(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    from kubernetes import client

    root = tmp_path_factory.mktemp("kube")
    targets = root / "pods.json"
    with ExitStack() as stack:
        sink = stack.enter_context(log_sink(root / "pvc", root))
        prom, prom_url = start_prometheus(root, [], file_sd=targets)
        stack.callback(stop_server, prom)
        controller = KServeController(root, config_maps={"driftloop-settings": {"DRIFTLOOP_MLFLOW_TRACKING_URI": store.tracking_uri}},
                                      secrets={}, services={LOG_SINK_SERVICE: sink}, pod_env={"PYTHONPATH": str(REPO_ROOT)}, targets_file=targets)
        config = client.Configuration()
        config.host = controller.serve_within(stack, free_port())
        yield Kube(controller, client.ApiClient(config), prom_url, root / "pvc")


def isvc_body(version: str) -> dict:
    return predictor_isvc(MODEL, NAMESPACE, MODEL, f"models:/{MODEL}/{version}", logger_url=LOG_SINK_SERVICE)


def crd_errors(obj: dict) -> list[str]:
    """Schema violations of the whole object, status included."""
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in crd_validator().iter_errors(obj)]


def send(url: str, n: int, prefix: str) -> ReplayTraffic:
    replay = ReplayTraffic(url, MODEL, make_data(n, 5), [*NUMERIC, *CATEGORICAL], label="label", threads=4)
    replay.send(replay.frame, prefix)
    return replay


def served_delta(controller: KServeController, before: dict[str, int]) -> dict[str, int]:
    return {rev: n - before.get(rev, 0) for rev, n in controller.served.items() if n - before.get(rev, 0)}


def test_create_split_promote_with_real_pods(kube: Kube, store: Store) -> None:
    from kubernetes import client

    api = client.CustomObjectsApi(kube.api_client)
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, isvc_body(store.versions["good1"]))
    obj = kube.controller.wait_settled(MODEL)
    assert crd_errors(obj) == []
    rev1 = obj["status"]["components"]["predictor"]["latestCreatedRevision"]
    url = obj["status"]["url"]
    before = dict(kube.controller.served)
    first = send(url, 30, "one")
    assert first.failed == 0
    assert served_delta(kube.controller, before) == {rev1: 30}

    backend = KubernetesBackend(MODEL, NAMESPACE, api_client=kube.api_client, poll_seconds=0.2)
    backend.deploy_challenger(f"models:/{MODEL}/{store.versions['good2']}")
    backend.wait_ready(timeout=180)
    backend.set_traffic(30)
    obj = kube.controller.wait_settled(MODEL)
    assert crd_errors(obj) == []
    pred = obj["status"]["components"]["predictor"]
    rev2 = pred["latestCreatedRevision"]
    assert rev2 != rev1
    assert {t["revisionName"]: t["percent"] for t in pred["traffic"]} == {rev2: 30, rev1: 70}
    assert backend.current_traffic() == 30
    before = dict(kube.controller.served)
    split = send(url, 300, "split")
    counts = served_delta(kube.controller, before)
    assert split.failed == 0 and sum(counts.values()) == 300
    assert 0.15 <= counts[rev2] / 300 <= 0.45, counts  # request ids hash to the challenger 30% of the time

    old_pod = kube.controller.pods(MODEL)[rev1]
    backend.promote()
    obj = kube.controller.wait_settled(MODEL)
    assert crd_errors(obj) == []
    assert [t["revisionName"] for t in obj["status"]["components"]["predictor"]["traffic"]] == [rev2]
    assert old_pod.proc.poll() is not None and list(kube.controller.pods(MODEL)) == [rev2]  # the old revision's pod is gone
    before = dict(kube.controller.served)
    assert send(url, 20, "after").failed == 0
    assert served_delta(kube.controller, before) == {rev2: 20}
    assert kube.controller.history[MODEL] == [100, 0, 30, None]

    deadline = time.monotonic() + 15  # the inference logger posts asynchronously; the sink flushes every 0.2 s
    while True:
        log = read_log(kube.log_dir, MODEL)
        if len(log) >= 350 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(log) == 350 and log["request_id"].is_unique
    assert sorted(log["model_version"].unique()) == sorted({store.versions["good1"], store.versions["good2"]})


def test_a_restarted_container_starts_its_counters_at_zero(kube: Kube, store: Store) -> None:
    """The kubelet restarts a killed container on the same address: its counter resets, as Prometheus sees."""
    obj = kube.controller.wait_settled(MODEL)
    url, rev = obj["status"]["url"], obj["status"]["components"]["predictor"]["latestCreatedRevision"]
    version = store.versions["good2"]
    query = f'driftloop_requests_total{{model_name="{MODEL}",model_version="{version}"}}'

    def prometheus(promql: str) -> float:
        result = httpx.get(f"{kube.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10).json()["data"]["result"]
        return sum(float(r["value"][1]) for r in result)

    assert send(url, 20, "pre").failed == 0
    pod = kube.controller.pods(MODEL)[rev]
    deadline = time.monotonic() + 30
    while prometheus(query) < 20 and time.monotonic() < deadline:  # scraped before the crash
        time.sleep(0.5)
    assert prometheus(query) >= 20
    old_pid = pod.proc.pid
    kube.controller.restart_pod(MODEL, rev)
    assert pod.restarts == 1 and pod.proc.pid != old_pid
    assert send(url, 5, "post").failed == 0  # requests during and after the restart are answered
    text = httpx.get(f"{pod.container_url}/metrics", timeout=5).text
    line = next(ln for ln in text.splitlines() if ln.startswith("driftloop_requests_total{") and f'model_version="{version}"' in ln)
    assert float(line.rsplit(" ", 1)[1]) == 5.0
    deadline = time.monotonic() + 30
    while prometheus(f"resets({query}[5m])") < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert prometheus(f"resets({query}[5m])") >= 1

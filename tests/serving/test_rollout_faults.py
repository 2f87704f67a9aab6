"""The rollout fault matrix: a controller killed after a traffic move, Prometheus answering
503 or plain text mid-analysis, the API answering 503 to the first rollback PATCH, MLflow
down at promotion, two rollouts at once. Each row drives the real controller against the
Kubernetes API stand-in (real HTTP, the real kubernetes client, resourceVersion conflicts)
and the real MLflow registry, and asserts the end state: the canary at 0% or the promotion
complete, the aliases naming what is served, the audit trail and the rollout record.
Figures of each row are appended to ``$DRIFTLOOP_FAULTS_REPORT`` when it is set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from k8s_standin import KServeStandIn, isvc
from serving_fixtures import MODEL, REPO_ROOT, FakeSource, free_port, policy_dict

from components.errors import ServiceUnavailable
from serving.canary.controller import run_rollout
from serving.canary.k8s import KubernetesBackend
from serving.canary.state import ANNOTATION, RolloutConflict, RolloutRecord

pytestmark = [pytest.mark.faults, pytest.mark.integration]
CHECKS = [{"metric": "error_rate", "max": 0.01}]


@pytest.fixture
def api():
    """(stand-in, its URL, a kubernetes ApiClient pointing at it)."""
    from kubernetes import client

    standin = KServeStandIn([isvc(MODEL, "models", "s3://models/churn/1")])
    port = free_port()
    server, thread = standin.serve(port)
    config = client.Configuration()
    config.host = f"http://127.0.0.1:{port}"
    try:
        yield standin, config.host, client.ApiClient(config)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def backend(api_client: Any) -> KubernetesBackend:
    return KubernetesBackend(MODEL, "models", api_client=api_client, storage_uri_for=lambda uri: "s3://models/churn/" + uri.rsplit("/", 1)[1],
                             poll_seconds=0.01)


def traffic_sleep(source: FakeSource, store: Any, errors: int = 0):  # type: ignore[no-untyped-def]
    """A fake sleep: each interval both arms serve 100 requests (the challenger ``errors`` of them failing)."""
    def sleep(seconds: float) -> None:
        source.add(store.versions["good1"], 100)
        source.add(store.versions["good2"], 100, errors=errors)
    return sleep


def record_of(standin: KServeStandIn) -> RolloutRecord:
    return RolloutRecord.from_json(standin.objects[("models", MODEL)]["metadata"]["annotations"][ANNOTATION])


def canary(standin: KServeStandIn) -> int | None:
    return standin.objects[("models", MODEL)]["spec"]["predictor"].get("canaryTrafficPercent")


def served_version(standin: KServeStandIn) -> str:
    """The version taking the traffic: the latest revision when promoted, else the previous one."""
    obj = standin.objects[("models", MODEL)]
    uri = obj["spec"]["predictor"]["model"]["storageUri"]
    return uri.rsplit("/", 1)[1] if canary(standin) is None else "previous"


def report(row: str, **figures: Any) -> None:
    path = os.environ.get("DRIFTLOOP_FAULTS_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"row": row, **figures}) + "\n")


_KILLED_CONTROLLER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from kubernetes import client
    from serving_fixtures import FakeSource, policy_dict
    from components.registry import ModelRegistry
    from components.settings import Settings
    from serving.canary.controller import run_rollout
    from serving.canary.k8s import KubernetesBackend

    config = client.Configuration()
    config.host = {host!r}
    b = KubernetesBackend("churn", "models", api_client=client.ApiClient(config),
                          storage_uri_for=lambda uri: "s3://models/churn/" + uri.rsplit("/", 1)[1], poll_seconds=0.01)
    source = FakeSource()
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        source.add({good1!r}, 100)
        source.add({good2!r}, 100)
        if len(calls) == {kill_at}:  # traffic has moved to this step: tell the test, then wait to be killed
            open({marker!r}, "w").write(str(b.current_traffic()))
            time.sleep(600)

    registry = ModelRegistry(Settings(workdir=Path({workdir!r}), mlflow_tracking_uri={tracking!r}))
    run_rollout(policy_dict(steps=[25, 50, 100], checks=[{{"metric": "error_rate", "max": 0.01}}]), b, source, registry,
                challenger_uri="models:/churn/{good2}", sleep=sleep, holder="first-controller")
""")


@pytest.mark.parametrize(("kill_at", "stale"), [(1, False), (2, False), (2, True)], ids=["after-25%", "after-50%", "after-50%-stale"])
def test_controller_killed_after_a_traffic_move_then_rerun(api, store, registry, tmp_path: Path, kill_at: int, stale: bool) -> None:
    standin, host, api_client = api
    good1, good2 = store.versions["good1"], store.versions["good2"]
    marker = tmp_path / "moved"
    script = _KILLED_CONTROLLER.format(tests=str(Path(__file__).parent), host=host, good1=good1, good2=good2, kill_at=kill_at,
                                       marker=str(marker), workdir=str(tmp_path / "w"), tracking=store.tracking_uri)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate(timeout=5)[0].decode()[-2000:] if proc.poll() is not None else "controller never moved traffic"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    moved_to = int(marker.read_text())
    # the crash left the canary where it was, and the record says so
    left = record_of(standin)
    assert canary(standin) == moved_to == [25, 50][kill_at - 1]
    assert (left.phase, left.percent, left.holder, left.challenger) == ("progressing", moved_to, "first-controller", good2)
    assert len(left.steps) == kill_at - 1  # the steps analysed before the kill were recorded

    source, lines = FakeSource(), []
    result = run_rollout(policy_dict(steps=[25, 50, 100], checks=CHECKS), backend(api_client), source, registry,
                         challenger_uri=f"models:/{MODEL}/{good2}", sleep=traffic_sleep(source, store), on_step=lines.append,
                         lease_seconds=0.0, stale_after=0.0 if stale else 3600.0)
    end = record_of(standin)
    if stale:
        assert result.outcome == "rolled_back" and "stale" in result.reason, lines
        assert canary(standin) == 0 and end.phase == "rolled_back"
        assert str(registry.get(MODEL, "champion").version) == good1
        assert registry.history(MODEL)[-1]["event"] == "rollback"
    else:
        assert result.outcome == "promoted", lines
        assert lines[0].startswith(f"resuming the rollout of version {good2}")
        # resumed at the recorded step: the traffic never went back below it
        percents = [b["spec"]["predictor"].get("canaryTrafficPercent") for _, b in standin.patches if "spec" in b]
        after_kill = percents[percents.index(moved_to) + 1:]
        assert after_kill[0] == moved_to and 0 not in after_kill and after_kill[-1] is None  # None: the field removed (promoted)
        assert canary(standin) is None and served_version(standin) == good2 and end.phase == "promoted"
        assert str(registry.get(MODEL, "champion").version) == good2  # the alias names what is served
        assert [s["percent"] for s in end.steps][:kill_at - 1] == [25, 50][:kill_at - 1]
    report(f"kill -9 after {'25' if kill_at == 1 else '50'}% move" + (" (stale record)" if stale else ""),
           outcome=result.outcome, canary=canary(standin), champion=str(registry.get(MODEL, "champion").version), phase=end.phase)


class _FlakyPrometheus:
    """The fake counters until ``broken`` is set, then a real HTTP server answering 503 / plain text."""

    def __init__(self, source: FakeSource, url: str) -> None:
        from serving.prometheus import PrometheusSource

        self.source, self.prom, self.broken = source, PrometheusSource(url, timeout=2), False

    def query(self, promql: str) -> list:
        return self.prom.query(promql) if self.broken else self.source.query(promql)

    def is_online(self) -> bool:
        return True


@pytest.mark.parametrize(("status", "body"), [(503, "Service Unavailable"), (200, "<html>login</html>")], ids=["503", "plain-text-200"])
def test_prometheus_fails_mid_analysis(api, store, registry, status: int, body: str) -> None:
    from test_prometheus import _Answer

    standin, _, api_client = api
    server = _Answer(status, body)
    source = FakeSource()
    flaky = _FlakyPrometheus(source, server.url)
    calls = [0]

    def sleep(seconds: float) -> None:
        traffic_sleep(source, store)(seconds)
        calls[0] += 1
        flaky.broken = calls[0] >= 2  # the second interval's reads fail

    try:
        result = run_rollout(policy_dict(steps=[25, 50, 100], checks=CHECKS), backend(api_client), flaky, registry,
                             challenger_uri=f"models:/{MODEL}/{store.versions['good2']}", sleep=sleep)
    finally:
        server.close()
    assert result.outcome == "rolled_back" and f"answered {status}" in result.reason, result.reason
    assert canary(standin) == 0 and record_of(standin).phase == "rolled_back"
    assert str(registry.get(MODEL, "champion").version) == store.versions["good1"] and registry.get(MODEL, "challenger") is None
    report(f"Prometheus {status} {'plain text' if status == 200 else ''} mid-analysis".replace("  ", " "), outcome=result.outcome,
           canary=canary(standin), steps=len(result.steps))


def test_api_503_on_the_first_rollback_patch(api, store, registry) -> None:
    standin, _, api_client = api
    standin.fail_patches = [lambda b: b.get("spec", {}).get("predictor") == {"canaryTrafficPercent": 0}]  # the rollback's, not the deploy's
    source, lines = FakeSource(), []
    result = run_rollout(policy_dict(checks=CHECKS), backend(api_client), source, registry, challenger_uri=f"models:/{MODEL}/{store.versions['good2']}",
                         sleep=traffic_sleep(source, store, errors=20), on_step=lines.append)
    assert result.outcome == "rolled_back" and result.reason.startswith("error_rate"), lines
    assert len(standin.failed) == 1 and any("rollback traffic move failed" in line for line in lines)
    assert canary(standin) == 0 and record_of(standin).phase == "rolled_back"
    assert registry.history(MODEL)[-1]["event"] == "rollback"
    report("API 503 on the first rollback PATCH", outcome=result.outcome, canary=canary(standin), failed_patches=len(standin.failed))


def test_api_down_past_the_deadline_exits_with_the_state_recorded(api, store, registry) -> None:
    standin, _, api_client = api
    standin.fail_patches = [lambda b: b.get("spec", {}).get("predictor") == {"canaryTrafficPercent": 0}] * 1000
    source = FakeSource()
    with pytest.raises(ServiceUnavailable, match="the rollback traffic move failed until the 1s deadline"):
        run_rollout(policy_dict(checks=CHECKS), backend(api_client), source, registry, challenger_uri=f"models:/{MODEL}/{store.versions['good2']}",
                    sleep=traffic_sleep(source, store, errors=20), retry_deadline=1.0)
    left = record_of(standin)
    assert left.phase == "rolling_back" and canary(standin) == 50  # the next run finishes the rollback
    standin.fail_patches = []
    result = run_rollout(policy_dict(checks=CHECKS), backend(api_client), source, registry, challenger_uri=f"models:/{MODEL}/{store.versions['good2']}",
                         sleep=traffic_sleep(source, store), lease_seconds=0.0)
    assert result.outcome == "rolled_back" and canary(standin) == 0 and record_of(standin).phase == "rolled_back"
    report("API down past the rollback deadline, then rerun", outcome=result.outcome, canary=canary(standin))


class _MlflowDownAtPromotion:
    """The real registry, except that promote() finds MLflow down while ``down`` is set."""

    def __init__(self, registry: Any) -> None:
        self.registry, self.down, self.attempts = registry, True, 0

    def promote(self, *args: Any, **kw: Any) -> Any:
        if self.down:
            self.attempts += 1
            raise ServiceUnavailable("MLflow at http://mlflow:5000 is unavailable (ConnectionError)")
        return self.registry.promote(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.registry, name)


def test_mlflow_down_at_promotion(api, store, registry) -> None:
    standin, _, api_client = api
    good1, good2 = store.versions["good1"], store.versions["good2"]
    flaky, source = _MlflowDownAtPromotion(registry), FakeSource()
    with pytest.raises(ServiceUnavailable, match="the registry promotion failed until the 1s deadline"):
        run_rollout(policy_dict(checks=CHECKS), backend(api_client), source, flaky, challenger_uri=f"models:/{MODEL}/{good2}",
                    sleep=traffic_sleep(source, store), retry_deadline=1.0)
    assert flaky.attempts >= 2  # retried with backoff
    assert canary(standin) is None and record_of(standin).phase == "promoting"  # served: good2; registry: good1, recorded as such
    assert str(registry.get(MODEL, "champion").version) == good1
    flaky.down = False  # MLflow is back: the rerun completes the promotion from the record
    result = run_rollout(policy_dict(checks=CHECKS), backend(api_client), source, flaky, challenger_uri=f"models:/{MODEL}/{good2}",
                         sleep=traffic_sleep(source, store), lease_seconds=0.0)
    assert result.outcome == "promoted" and record_of(standin).phase == "promoted"
    assert canary(standin) is None and served_version(standin) == good2 == str(registry.get(MODEL, "champion").version)
    event = registry.history(MODEL)[-1]
    assert (event["event"], str(event["version"]), str(event["previous"])) == ("promote", good2, good1)
    report("MLflow down at promotion, then rerun", outcome=result.outcome, canary=canary(standin), registry_attempts=flaky.attempts)


def test_two_rollouts_at_once(api, store, registry) -> None:
    standin, _, api_client = api
    good2 = store.versions["good2"]
    source, holding, release = FakeSource(), threading.Event(), threading.Event()
    first: dict[str, Any] = {}

    def slow_sleep(seconds: float) -> None:
        traffic_sleep(source, store)(seconds)
        holding.set()
        release.wait(30)

    def run_first() -> None:
        first["result"] = run_rollout(policy_dict(checks=CHECKS), backend(api_client), source, registry,
                                      challenger_uri=f"models:/{MODEL}/{good2}", sleep=slow_sleep, holder="scheduled")

    thread = threading.Thread(target=run_first)
    thread.start()
    assert holding.wait(30)
    patches_before = len(standin.patches)
    with pytest.raises(RolloutConflict, match="is in progress by scheduled: progressing at step 1, 50%") as err:
        run_rollout(policy_dict(checks=CHECKS), backend(api_client), FakeSource(), registry, challenger_uri=f"models:/{MODEL}/{good2}",
                    holder="emergency", sleep=lambda s: None)
    assert len(standin.patches) == patches_before  # the refused rollout moved nothing
    release.set()
    thread.join(30)
    assert first["result"].outcome == "promoted" and canary(standin) is None
    assert str(registry.get(MODEL, "champion").version) == good2 and record_of(standin).holder == "scheduled"
    report("two rollouts at once", outcome=first["result"].outcome, refused=str(err.value)[:80])


# Local backend rows: real router and predictor processes under live client traffic.

@pytest.fixture(scope="module")
def local_champion(store, tmp_path_factory: pytest.TempPathFactory):
    from serving_fixtures import predictor_process

    log_dir = tmp_path_factory.mktemp("faultlog")
    with predictor_process(store, f"models:/{MODEL}/{store.versions['good1']}", log_dir) as url:
        yield url, log_dir


def _local(store, local_champion, work: Path):  # type: ignore[no-untyped-def]
    from serving.canary.local import LocalBackend

    url, log_dir = local_champion
    return LocalBackend(MODEL, f"models:/{MODEL}@champion", tracking_uri=store.tracking_uri, log_dir=log_dir, work_dir=work, champion_url=url)


def test_local_restart_resumes_from_the_state_file(store, registry, local_champion, tmp_path: Path) -> None:
    from serving_fixtures import live_traffic

    from serving.canary.state import FileState
    from serving.prometheus import DirectSource

    good1, good2 = store.versions["good1"], store.versions["good2"]
    work = tmp_path / "servers"
    # what a controller killed (kill -9) right after its 50% move leaves in the state file
    FileState(work / f"{MODEL}-rollout.json").write_state(
        RolloutRecord(MODEL, good1, good2, "killed-controller", phase="progressing", step=1, percent=50, started_at=time.time() - 5,
                      updated_at=time.time() - 5), "0")
    lines: list[str] = []
    with _local(store, local_champion, work) as b:
        b.start()
        with live_traffic(b.url, threads=4) as traffic:
            result = run_rollout(policy_dict(steps=[25, 50, 100], checks=CHECKS), b, DirectSource(b.metrics_targets), registry,
                                 challenger_uri=f"models:/{MODEL}/{good2}", on_step=lines.append, lease_seconds=0.0)
            final = b.current_traffic()
        end, _ = b.read_state()
    assert result.outcome == "promoted", lines
    assert lines[0].startswith("resuming") and [s["percent"] for s in result.steps if s["decision"] != "hold"] == [50, 100]
    assert traffic.failures() == [] and len(traffic.results) > 50
    assert final == 0 and str(registry.get(MODEL, "champion").version) == good2 and end is not None and end.phase == "promoted"
    report("local: controller restarted after its 50% move", outcome=result.outcome, requests=len(traffic.results),
           failed_requests=len(traffic.failures()), champion=good2)


class _Boom(Exception):
    pass


@pytest.mark.parametrize("fault", ["bug", "sigterm"])
def test_local_failure_after_traffic_moved_rolls_back(store, registry, local_champion, tmp_path: Path, fault: str) -> None:
    """A bug in the analysis (not a DriftloopError) or SIGTERM mid-rollout: traffic back on the champion, no client request lost."""
    from serving_fixtures import live_traffic

    from serving.canary.controller import RolloutInterrupted
    from serving.prometheus import DirectSource

    good1, good2 = store.versions["good1"], store.versions["good2"]
    calls = [0]

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        calls[0] += 1
        if calls[0] == 2:
            if fault == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                raise _Boom("labels join: KeyError 'request_id'")

    expected = RolloutInterrupted if fault == "sigterm" else _Boom
    with _local(store, local_champion, tmp_path / "servers") as b:
        b.start()
        with live_traffic(b.url, threads=4) as traffic, pytest.raises(expected) as err:
            run_rollout(policy_dict(steps=[25, 50, 100], checks=CHECKS), b, DirectSource(b.metrics_targets), registry,
                        challenger_uri=f"models:/{MODEL}/{good2}", sleep=sleep)
        final = b.current_traffic()
        end, _ = b.read_state()
    assert final == 0 and b.challenger is None and end is not None and end.phase == "rolled_back"
    assert traffic.failures() == [] and len(traffic.results) > 20
    assert str(registry.get(MODEL, "champion").version) == good1 and registry.get(MODEL, "challenger") is None
    event = registry.history(MODEL)[-1]
    assert event["event"] == "rollback" and ("SIGTERM" if fault == "sigterm" else "_Boom") in event["reason"]
    if fault == "sigterm":
        assert "traffic is back on the champion" in str(err.value)
    report(f"local: {'SIGTERM' if fault == 'sigterm' else 'a bug (non-driftloop exception)'} after the 50% move", outcome="rolled_back",
           requests=len(traffic.results), failed_requests=len(traffic.failures()), canary=final)


# Stand-in rows with real predictor pods: the KServe-like controller (tests/rehearsal/kserve_controller.py)
# runs a predictor process per revision behind a router, Prometheus scrapes them (file_sd).

@dataclass
class Pods:
    controller: Any
    api_client: Any
    prometheus_url: str


@pytest.fixture
def pods(store, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The API stand-in acting as KServe with real predictor processes, and a real Prometheus scraping them."""
    from contextlib import ExitStack

    from kubernetes import client
    from serving_fixtures import start_prometheus, stop_server

    from tests.rehearsal.kserve_controller import KServeController

    targets = tmp_path / "pods.json"
    with ExitStack() as stack:
        prom, prom_url = start_prometheus(tmp_path, [], file_sd=targets)
        stack.callback(stop_server, prom)
        controller = KServeController(tmp_path, config_maps={"driftloop-settings": {"DRIFTLOOP_MLFLOW_TRACKING_URI": store.tracking_uri}},
                                      secrets={}, services={}, pod_env={"PYTHONPATH": str(REPO_ROOT)}, targets_file=targets)
        config = client.Configuration()
        config.host = controller.serve_within(stack, free_port())
        yield Pods(controller, client.ApiClient(config), prom_url)


def _prometheus_value(url: str, promql: str) -> float:
    import httpx

    result = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()["data"]["result"]
    return sum(float(r["value"][1]) for r in result)


def test_predictor_pod_restart_mid_step_keeps_its_errors(pods: Pods, store, registry) -> None:
    """The challenger's container fails 30% of requests, is killed (kill -9) mid-step and restarts clean:
    the step must still see the errors it served before the crash and roll back."""
    from kubernetes import client
    from serving_fixtures import live_traffic

    from serving.canary.k8s import GROUP, PLURAL, VERSION
    from serving.prometheus import PrometheusSource
    from tests.rehearsal.kserve_controller import predictor_isvc

    good1, good2 = store.versions["good1"], store.versions["good2"]
    ns, ctl = "models", pods.controller
    api = client.CustomObjectsApi(pods.api_client)
    api.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, predictor_isvc(MODEL, ns, MODEL, f"models:/{MODEL}/{good1}"))
    ctl.wait_settled(MODEL, namespace=ns)
    failing = predictor_isvc(MODEL, ns, MODEL, f"models:/{MODEL}/{good2}", extra_args=("--inject-error-rate", "0.3"))
    api.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, MODEL, {"spec": {"predictor": {
        "canaryTrafficPercent": 0, "containers": failing["spec"]["predictor"]["containers"]}}})  # the challenger revision, at 0%
    url = ctl.wait_settled(MODEL, namespace=ns)["status"]["url"]
    errors_query = f'driftloop_request_errors_total{{model_name="{MODEL}",model_version="{good2}",kind="server"}}'
    seen: dict[str, Any] = {}

    def sleep(seconds: float) -> None:
        if seen:
            time.sleep(seconds)
            return
        deadline = time.monotonic() + 60  # the step's traffic reaches the failing challenger and Prometheus scrapes its errors
        while _prometheus_value(pods.prometheus_url, errors_query) < 10 and time.monotonic() < deadline:
            time.sleep(0.5)
        seen["errors_before_crash"] = _prometheus_value(pods.prometheus_url, errors_query)
        seen["failed_before_crash"] = traffic.failed
        pod = ctl.pods(MODEL, ns)[ctl.isvc_revision(MODEL, ns)]
        clean = [a for i, a in enumerate(pod.argv) if a != "--inject-error-rate" and (i == 0 or pod.argv[i - 1] != "--inject-error-rate")]
        ctl.restart_pod(MODEL, namespace=ns, argv=clean)
        seen["failed_until_restarted"] = traffic.failed
        time.sleep(seconds)

    backend = KubernetesBackend(MODEL, ns, api_client=pods.api_client, poll_seconds=0.2)
    with live_traffic(url, threads=4) as traffic:
        # max 0.005: with the restart's clean counters alone the step sees 0 errors (the old defect: promoted);
        # the >= 10 errors served before the crash exceed it at any request rate these 4 threads reach in 8 s
        result = run_rollout(policy_dict(steps=[50, 100], interval_seconds=8, checks=[{"metric": "error_rate", "max": 0.005}]), backend,
                             PrometheusSource(pods.prometheus_url), registry, challenger_uri=f"models:/{MODEL}/{good2}", sleep=sleep)
    counted = [c for s in result.steps for c in s["checks"] if c.get("metric") == "error_rate"]
    statuses = sorted(Counter(r.status for r in traffic.failures()).items())
    report("predictor pod restart mid-step (stand-in, real pods)", outcome=result.outcome, reason=result.reason[:120],
           errors_before_crash=seen.get("errors_before_crash"), error_rate_checks=[c.get("value") for c in counted],
           requests=traffic.sent, failed_requests=traffic.failed, failed_before_crash=seen.get("failed_before_crash"),
           failed_until_restarted=seen.get("failed_until_restarted"), failed_statuses=statuses)
    assert seen["errors_before_crash"] >= 10
    # requests fail only inside the fault: the injected 500s, those in flight at the kill (502) or waiting for the restart
    assert traffic.failed == seen["failed_until_restarted"], statuses
    assert {status for status, _ in statuses} <= {500, 502, -1}, statuses  # -1: a client timeout (30 s) while the container restarts
    assert result.outcome == "rolled_back" and result.reason.startswith("error_rate"), (result.reason, counted)
    assert backend.current_traffic() == 0 and str(registry.get(MODEL, "champion").version) == good1


def test_api_503_on_the_first_rollback_patch_with_real_pods(pods: Pods, store, registry) -> None:
    """The rollback row again with predictor pods behind the stand-in: clients keep being answered through the
    challenger's deploy, the split, the refused rollback PATCH and its retry."""
    from kubernetes import client
    from serving_fixtures import live_traffic

    from serving.canary.k8s import GROUP, PLURAL, VERSION
    from tests.rehearsal.kserve_controller import predictor_isvc

    good1, good2 = store.versions["good1"], store.versions["good2"]
    ns, ctl = "models", pods.controller
    client.CustomObjectsApi(pods.api_client).create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, predictor_isvc(MODEL, ns, MODEL, f"models:/{MODEL}/{good1}"))
    url = ctl.wait_settled(MODEL, namespace=ns)["status"]["url"]
    ctl.fail_patches = [lambda b: b.get("spec", {}).get("predictor") == {"canaryTrafficPercent": 0}]  # the rollback's, not the deploy's
    source, lines = FakeSource(), []
    backend = KubernetesBackend(MODEL, ns, api_client=pods.api_client, poll_seconds=0.2)
    with live_traffic(url, threads=4) as traffic:
        result = run_rollout(policy_dict(checks=CHECKS), backend, source, registry, challenger_uri=f"models:/{MODEL}/{good2}",
                             sleep=traffic_sleep(source, store, errors=20), on_step=lines.append)
        ctl.wait_settled(MODEL, namespace=ns)
        time.sleep(1)  # requests after the rollback landed
    obj = ctl.objects[(ns, MODEL)]
    assert result.outcome == "rolled_back" and result.reason.startswith("error_rate"), lines
    assert len(ctl.failed) == 1 and obj["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert ctl.history[MODEL] == [100, 0, 50, 0]  # deploy at 0%, the 50% step, the rollback (after its 503)
    assert traffic.failed == 0 and traffic.sent > 20, traffic.failures()[:3]
    assert str(registry.get(MODEL, "champion").version) == good1
    report("API 503 on the first rollback PATCH (stand-in, real pods)", outcome=result.outcome, canary=0, failed_patches=len(ctl.failed),
           requests=traffic.sent, failed_requests=traffic.failed)

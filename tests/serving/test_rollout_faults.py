"""The rollout fault matrix: a controller killed (kill -9) after a traffic move, Prometheus
answering 503 or plain text mid-analysis, the API answering 503 to the first rollback PATCH
(and past the deadline), MLflow down at promotion, two rollouts at once, a predictor pod
restarting mid-step; on the stand-in Kubernetes API with real predictor pods
(tests/rehearsal/kserve_controller.py: a predictor process per revision behind a router, the
KServe logger posting every request and response to a real log sink) and on the local backend
(real router and predictor processes).

Every row runs under live client traffic and asserts the end state (canary at 0% or the
promotion complete, the aliases naming what is served, the audit trail, the rollout record),
the client requests that failed outside the injected fault (measured: 0), and the prediction-log
records lost (measured: every request answered 200 must be in the log). Each row writes its
figures to ``test-artifacts/faults/`` (tests/serving/fault_report.py renders the table of
docs/reliability.md from them)."""

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fault_report import write_row
from serving_fixtures import MODEL, REPO_ROOT, FakeSource, free_port, live_traffic, policy_dict

from components.errors import ServiceUnavailable
from serving.canary.controller import run_rollout
from serving.canary.k8s import KubernetesBackend
from serving.canary.state import ANNOTATION, RolloutConflict, RolloutRecord
from serving.traffic import ReplayTraffic

pytestmark = [pytest.mark.faults, pytest.mark.integration]
CHECKS = [{"metric": "error_rate", "max": 0.01}]
NS = "models"
PAUSE = 0.5  # real seconds each (fake-counter) interval lasts on the real-pod rows: client traffic flows through every split
LOG_WAIT = 60.0  # how long the agents' events may take to reach the sink's files once traffic stops


def traffic_sleep(source: FakeSource, champion: str, challenger: str, errors: int = 0, pause: float = 0.0):  # type: ignore[no-untyped-def]
    """A sleep for the analysis: each interval both arms serve 100 requests in the fake counters (the
    challenger ``errors`` of them failing) while ``pause`` real seconds pass."""
    def sleep(seconds: float) -> None:
        time.sleep(pause)
        source.add(champion, 100)
        source.add(challenger, 100, errors=errors)
    return sleep


# -- the stand-in cluster: API + KServe-like controller, real predictor pods, log sink, Prometheus ----------

@dataclass
class Cluster:
    ctl: Any  # tests.rehearsal.kserve_controller.KServeController
    api_client: Any
    prometheus_url: str
    log_dir: Path  # the prediction-log volume the sink writes


@pytest.fixture(scope="module")
def cluster(store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One InferenceService's world for the whole file: the API stand-in acting as KServe (a predictor
    process per revision, a router splitting by canaryTrafficPercent), the KServe logger's log sink and
    a real Prometheus scraping the pods. Rows share it (a predictor start is the expensive part);
    :func:`service` gives each row the service in a known state."""
    from contextlib import ExitStack

    from kubernetes import client
    from serving_fixtures import start_prometheus, stop_server

    from tests.rehearsal.cluster import LOG_SINK_SERVICE, log_sink
    from tests.rehearsal.kserve_controller import KServeController

    root = tmp_path_factory.mktemp("cluster")
    targets = root / "pods.json"
    with ExitStack() as stack:
        prom, prom_url = start_prometheus(root, [], file_sd=targets)
        stack.callback(stop_server, prom)
        sink = stack.enter_context(log_sink(root / "pvc", root))
        ctl = KServeController(root, config_maps={"driftloop-settings": {"DRIFTLOOP_MLFLOW_TRACKING_URI": store.tracking_uri}},
                               secrets={}, services={LOG_SINK_SERVICE: sink}, pod_env={"PYTHONPATH": str(REPO_ROOT)}, targets_file=targets)
        config = client.Configuration()
        config.host = ctl.serve_within(stack, free_port())
        yield Cluster(ctl, client.ApiClient(config), prom_url, root / "pvc")


def _version_of(template: dict) -> str:
    args = template["containers"][0]["args"]
    return str(args[args.index("--model-uri") + 1]).rsplit("/", 1)[1]


@dataclass
class Service:
    """The InferenceService of one row: ``champion`` serving 100%, ``challenger`` the other version."""

    cluster: Cluster
    champion: str
    challenger: str
    url: str
    moves_before: int  # canaryTrafficPercent writes before the row
    started: float = field(default_factory=time.monotonic)

    @property
    def ctl(self) -> Any:
        return self.cluster.ctl

    def backend(self) -> KubernetesBackend:
        return KubernetesBackend(MODEL, NS, api_client=self.cluster.api_client, poll_seconds=0.2)

    def obj(self) -> dict:
        with self.ctl.lock:
            return json.loads(json.dumps(self.ctl.objects[(NS, MODEL)]))

    def canary(self) -> int | None:
        return self.obj()["spec"]["predictor"].get("canaryTrafficPercent")

    def record(self) -> RolloutRecord:
        return RolloutRecord.from_json(self.obj()["metadata"]["annotations"][ANNOTATION])

    def moves(self) -> list[int | None]:
        """canaryTrafficPercent after each spec write of this row (None: the field removed, a promotion)."""
        return list(self.ctl.history[MODEL][self.moves_before:])

    def serving(self) -> dict[str, int]:
        """Model version -> share of the traffic, as the service routes it now."""
        return _serving(self.ctl)

    def served_version(self) -> str:
        """The one version taking all the traffic (fails on a split)."""
        serving = {v: p for v, p in self.serving().items() if p}
        assert list(serving.values()) == [100], serving
        return next(iter(serving))

    def settle(self) -> None:
        """Until the pods and the router match the spec, then a moment of traffic on the final split."""
        self.ctl.wait_settled(MODEL, namespace=NS)
        time.sleep(PAUSE)


def _serving(ctl: Any) -> dict[str, int]:
    with ctl.lock:
        obj = ctl.objects[(NS, MODEL)]
        templates = ctl.services_run[(NS, MODEL)].templates
        return {_version_of(templates[t["revisionName"]]): int(t.get("percent", 0))
                for t in obj["status"]["components"]["predictor"]["traffic"]}


@pytest.fixture
def service(cluster: Cluster, store, registry) -> Service:
    """The service serving one good version at 100% with no rollout record; that version is the registry's
    champion and the other good version the row's challenger. A service a rollback left with the challenger
    at 0% is reused as it is (its pods are warm); one left mid-split is put back at 0%; one whose latest
    revision carries a test fault (``--inject-error-rate``) gets a clean revision."""
    from kubernetes import client

    from serving.canary.k8s import GROUP, PLURAL, VERSION
    from tests.rehearsal.cluster import LOG_SINK_SERVICE
    from tests.rehearsal.kserve_controller import predictor_isvc

    ctl, api = cluster.ctl, client.CustomObjectsApi(cluster.api_client)
    good1, good2 = store.versions["good1"], store.versions["good2"]
    ctl.fail_patches.clear()
    ctl.failed.clear()

    def spec(version: str) -> dict:
        return predictor_isvc(MODEL, NS, MODEL, f"models:/{MODEL}/{version}", logger_url=LOG_SINK_SERVICE)

    if (NS, MODEL) not in ctl.objects:
        api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, spec(good1))
    else:
        ctl.wait_settled(MODEL, namespace=NS)
        serving = {v: p for v, p in _serving(ctl).items() if p}
        champion = max(serving, key=lambda v: serving[v])
        predictor: dict[str, Any] = {}
        containers = ctl.objects[(NS, MODEL)]["spec"]["predictor"]["containers"]
        clean = spec(_version_of({"containers": containers}))["spec"]["predictor"]["containers"]
        if containers != clean:  # a test fault in the latest revision: a clean revision of the champion
            predictor = {"canaryTrafficPercent": None, "containers": spec(champion)["spec"]["predictor"]["containers"]}
        elif len(serving) > 1:
            predictor = {"canaryTrafficPercent": 0}
        body: dict[str, Any] = {"metadata": {"annotations": {ANNOTATION: None}}}
        if predictor:
            body["spec"] = {"predictor": predictor}
        api.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, MODEL, body)
    obj = ctl.wait_settled(MODEL, namespace=NS)
    serving = {v: p for v, p in _serving(ctl).items() if p}
    assert list(serving.values()) == [100], serving
    champion = next(iter(serving))
    registry._client().set_registered_model_alias(MODEL, "champion", champion)
    return Service(cluster, champion, good2 if champion == good1 else good1, obj["status"]["url"], len(ctl.history.get(MODEL, [])))


def client_traffic(service: Service) -> ReplayTraffic:
    """Live client requests through the service's URL (2 threads) for the whole row."""
    return live_traffic(service.url, threads=2)


def logged_lost(log_dir: Path, traffic: ReplayTraffic, wait: float = LOG_WAIT) -> tuple[int, int]:
    """(requests answered 200, how many of them are missing from the prediction log) once the log
    has caught up (or ``wait`` seconds passed): the measured "log records lost"."""
    from serving.prediction_log import read_log

    answered = {r.request_id for r in traffic.results if r.status == 200}
    deadline = time.monotonic() + wait
    while True:
        logged = set(read_log(log_dir, MODEL)["request_id"].astype(str)) if (log_dir / MODEL).exists() else set()
        missing = answered - logged
        if not missing or time.monotonic() > deadline:
            return len(answered), len(missing)
        time.sleep(0.5)


def finish_row(request: pytest.FixtureRequest, service: Service, traffic: ReplayTraffic, row: str, order: int, end_state: str,
               aliases: str, inside_fault: int = 0, **extra: Any) -> dict[str, Any]:
    """Measure the row's client failures and lost log records, store its figures (test-artifacts/faults/)."""
    logged, lost = logged_lost(service.cluster.log_dir, traffic)
    figures = {"order": order, "backend": "stand-in, real pods", "end_state": end_state, "aliases": aliases, "requests": traffic.sent,
               "failed_outside_fault": traffic.failed - inside_fault, "failed_inside_fault": inside_fault,
               "failed_statuses": sorted(Counter(r.status for r in traffic.failures()).items()), "logged": logged, "lost": lost,
               "seconds": round(time.monotonic() - service.started, 1), **extra}
    write_row(request.node.nodeid, row, **figures)
    return figures


# -- kill -9 of the controller after a traffic move ---------------------------------------------------------

_KILLED_CONTROLLER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from kubernetes import client
    from serving_fixtures import FakeSource
    from components.registry import ModelRegistry
    from components.settings import Settings
    from serving.canary.controller import run_rollout
    from serving.canary.k8s import KubernetesBackend
    from serving_fixtures import policy_dict

    config = client.Configuration()
    config.host = {host!r}
    b = KubernetesBackend("churn", "models", api_client=client.ApiClient(config), poll_seconds=0.2)
    source = FakeSource()
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        time.sleep({pause!r})
        source.add({champion!r}, 100)
        source.add({challenger!r}, 100)
        if len(calls) == {kill_at}:  # traffic has moved to this step: tell the test (atomically), then wait to be killed
            tmp = {marker!r} + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(b.current_traffic()))
            os.replace(tmp, {marker!r})
            time.sleep(3600)

    registry = ModelRegistry(Settings(workdir=Path({workdir!r}), mlflow_tracking_uri={tracking!r}))
    run_rollout(policy_dict(steps=[25, 50, 100], checks=[{{"metric": "error_rate", "max": 0.01}}]), b, source, registry,
                challenger_uri="models:/churn/{challenger}", sleep=sleep, holder="first-controller")
""")


def start_killable_controller(service: Service, store, tmp_path: Path, kill_at: int) -> tuple[subprocess.Popen, Path, Path]:  # type: ignore[no-untyped-def]
    """A controller process (the real run_rollout) that reports its ``kill_at``-th traffic move in a marker file."""
    marker, out = tmp_path / "moved", tmp_path / "controller.log"
    script = _KILLED_CONTROLLER.format(tests=str(Path(__file__).parent), host=service.cluster.api_client.configuration.host,
                                       champion=service.champion, challenger=service.challenger, kill_at=kill_at, pause=PAUSE,
                                       marker=str(marker), workdir=str(tmp_path / "w"), tracking=store.tracking_uri)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    with open(out, "wb") as log:  # a file, not a pipe: a pipe nobody reads fills up and blocks the controller
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, marker, out


def wait_for_marker(proc: subprocess.Popen, marker: Path, out: Path, limit: float = 900.0) -> int:
    """The traffic share the controller reported after its move. No tight deadline: on a loaded machine the
    controller's imports alone can take minutes; while it lives it is progressing, and if it dies its output says why."""
    deadline = time.monotonic() + limit
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"the controller exited with {proc.returncode} before moving traffic:\n{out.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the controller did not move traffic in {limit:.0f}s:\n{out.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    return int(marker.read_text())


@pytest.mark.parametrize(("kill_at", "stale"), [(1, False), (2, False), (3, False), (2, True)],
                         ids=["after-25%", "after-50%", "after-100%", "after-50%-stale"])
def test_controller_killed_after_a_traffic_move_then_rerun(request, service: Service, store, registry, tmp_path: Path, kill_at: int,
                                                           stale: bool) -> None:
    champion, challenger = service.champion, service.challenger
    with client_traffic(service) as traffic:
        proc, marker, out = start_killable_controller(service, store, tmp_path, kill_at)
        try:
            moved_to = wait_for_marker(proc, marker, out)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        # the crash left the canary where it was, and the record says so
        left = service.record()
        assert service.canary() == moved_to == [25, 50, 100][kill_at - 1]
        assert (left.phase, left.percent, left.holder, left.challenger) == ("progressing", moved_to, "first-controller", challenger)
        assert len(left.steps) == kill_at - 1  # the steps analysed before the kill were recorded
        time.sleep(PAUSE)  # clients keep being served by the split the dead controller left

        source, lines = FakeSource(), []
        result = run_rollout(policy_dict(steps=[25, 50, 100], checks=CHECKS), service.backend(), source, registry,
                             challenger_uri=f"models:/{MODEL}/{challenger}", sleep=traffic_sleep(source, champion, challenger, pause=PAUSE),
                             on_step=lines.append, lease_seconds=0.0, stale_after=0.0 if stale else 3600.0)
        service.settle()
    end, moves = service.record(), service.moves()
    if stale:
        assert result.outcome == "rolled_back" and "stale" in result.reason, lines
        assert service.canary() == 0 and end.phase == "rolled_back" and service.served_version() == champion
        assert str(registry.get(MODEL, "champion").version) == champion
        assert registry.history(MODEL)[-1]["event"] == "rollback"
        aliases = f"champion v{champion} = served; audit `rollback`"
    else:
        assert result.outcome == "promoted", lines
        assert lines[0].startswith(f"resuming the rollout of version {challenger}")
        # resumed at the recorded step: the traffic never went back below it
        # (a write that leaves the spec as it was, such as the resumed step's own 25%, is not a move)
        after_kill = moves[moves.index(moved_to):]
        assert 0 not in after_kill and after_kill[-1] is None, moves  # None: the field removed (promoted)
        assert after_kill[:-1] == sorted(after_kill[:-1]), moves  # only forward from the recorded step
        assert service.canary() is None and service.served_version() == challenger and end.phase == "promoted"
        assert str(registry.get(MODEL, "champion").version) == challenger  # the alias names what is served
        assert [s["percent"] for s in end.steps][:kill_at - 1] == [25, 50, 100][:kill_at - 1]
        aliases = f"champion v{challenger} = served; audit `promote`"
    figures = finish_row(request, service, traffic, f"controller `kill -9` right after its {moved_to}% move, then rerun"
                         + (" with the record older than `stale_after`" if stale else ""), 10 + 2 * kill_at + stale,
                         f"record `progressing` at {moved_to}% after the kill; rerun "
                         + ("rolled back: canary 0, record `rolled_back`" if stale else
                            f"resumed at {moved_to}% (never back to 0), promoted: canary field removed, record `promoted`"),
                         aliases, canary_moves=moves)
    assert figures["failed_outside_fault"] == 0, figures["failed_statuses"]
    assert figures["lost"] == 0 and figures["logged"] > 20, figures


# -- Prometheus failing mid-analysis ------------------------------------------------------------------------

class _FlakyPrometheus:
    """The fake counters until ``broken`` is set, then a real HTTP server answering 503 / plain text."""

    def __init__(self, source: Any, url: str) -> None:
        from serving.prometheus import PrometheusSource

        self.source, self.prom, self.broken = source, PrometheusSource(url, timeout=2), False

    def query(self, promql: str) -> list:
        return self.prom.query(promql) if self.broken else self.source.query(promql)

    def is_online(self) -> bool:
        return True


@pytest.mark.parametrize(("status", "body"), [(503, "Service Unavailable"), (200, "<html>login</html>")], ids=["503", "plain-text-200"])
def test_prometheus_fails_mid_analysis(request, service: Service, registry, status: int, body: str) -> None:
    from test_prometheus import _Answer

    server = _Answer(status, body)
    source = FakeSource()
    flaky = _FlakyPrometheus(source, server.url)
    calls = [0]

    def sleep(seconds: float) -> None:
        traffic_sleep(source, service.champion, service.challenger, pause=PAUSE)(seconds)
        calls[0] += 1
        flaky.broken = calls[0] >= 2  # the second interval's reads fail

    try:
        with client_traffic(service) as traffic:
            result = run_rollout(policy_dict(steps=[25, 50, 100], checks=CHECKS), service.backend(), flaky, registry,
                                 challenger_uri=f"models:/{MODEL}/{service.challenger}", sleep=sleep)
            service.settle()
    finally:
        server.close()
    assert result.outcome == "rolled_back" and f"answered {status}" in result.reason, result.reason
    assert service.canary() == 0 and service.record().phase == "rolled_back" and service.served_version() == service.champion
    assert str(registry.get(MODEL, "champion").version) == service.champion and registry.get(MODEL, "challenger") is None
    assert service.moves() in ([0, 25, 50, 0], [25, 50, 0])  # deployed at 0% (unless already there), two steps, rolled back
    what = "503 (plain text)" if status == 503 else "200 with an HTML body"
    figures = finish_row(request, service, traffic, f"Prometheus answering {what} at the second analysis", 20 + (status == 200),
                         f"rolled back after {len(result.steps)} analysed step, reason 'Prometheus ... answered "
                         f"{result.reason.split(' answered ', 1)[-1][:30]}...'; canary 0",
                         f"champion v{service.champion} = served, challenger alias dropped")
    assert figures["failed_outside_fault"] == 0, figures["failed_statuses"]
    assert figures["lost"] == 0 and figures["logged"] > 20, figures


# -- the API refusing the rollback PATCH --------------------------------------------------------------------

def _rollback_patch(body: dict) -> bool:
    return body.get("spec", {}).get("predictor") == {"canaryTrafficPercent": 0}  # the rollback's, not the deploy's


def test_api_503_on_the_first_rollback_patch(request, service: Service, registry) -> None:
    """Clients keep being answered through the challenger's split, the refused rollback PATCH and its retry."""
    service.ctl.fail_patches = [_rollback_patch]
    source, lines = FakeSource(), []
    with client_traffic(service) as traffic:
        result = run_rollout(policy_dict(checks=CHECKS), service.backend(), source, registry, challenger_uri=f"models:/{MODEL}/{service.challenger}",
                             sleep=traffic_sleep(source, service.champion, service.challenger, errors=20, pause=PAUSE), on_step=lines.append)
        service.settle()
    assert result.outcome == "rolled_back" and result.reason.startswith("error_rate"), lines
    assert len(service.ctl.failed) == 1 and any("rollback traffic move failed" in line for line in lines)
    assert service.canary() == 0 and service.record().phase == "rolled_back" and service.served_version() == service.champion
    assert service.moves()[-2:] == [50, 0]  # the 50% step, then the rollback (after its 503)
    assert str(registry.get(MODEL, "champion").version) == service.champion and registry.history(MODEL)[-1]["event"] == "rollback"
    figures = finish_row(request, service, traffic, "API answering 503 (plain text) to the first rollback PATCH", 30,
                         "1 PATCH failed, retried after 0.5 s, landed; canary 0, record `rolled_back`",
                         f"champion v{service.champion} = served; audit `rollback`", failed_patches=len(service.ctl.failed))
    assert figures["failed_outside_fault"] == 0, figures["failed_statuses"]
    assert figures["lost"] == 0 and figures["logged"] > 20, figures


def test_api_down_past_the_deadline_exits_with_the_state_recorded(request, service: Service, registry) -> None:
    service.ctl.fail_patches = [_rollback_patch] * 1000
    source = FakeSource()
    sleep = traffic_sleep(source, service.champion, service.challenger, errors=20, pause=PAUSE)
    with client_traffic(service) as traffic:
        with pytest.raises(ServiceUnavailable, match="the rollback traffic move failed until the 1s deadline"):
            run_rollout(policy_dict(checks=CHECKS), service.backend(), source, registry,
                        challenger_uri=f"models:/{MODEL}/{service.challenger}", sleep=sleep, retry_deadline=1.0)
        left = service.record()
        assert left.phase == "rolling_back" and service.canary() == 50  # the next run finishes the rollback
        service.ctl.fail_patches = []
        time.sleep(PAUSE)
        result = run_rollout(policy_dict(checks=CHECKS), service.backend(), source, registry,
                             challenger_uri=f"models:/{MODEL}/{service.challenger}", sleep=sleep, lease_seconds=0.0)
        service.settle()
    assert result.outcome == "rolled_back" and service.canary() == 0 and service.record().phase == "rolled_back"
    assert service.served_version() == service.champion and str(registry.get(MODEL, "champion").version) == service.champion
    figures = finish_row(request, service, traffic, "API refusing the rollback PATCH past a 1 s deadline, then rerun", 31,
                         "first run raises `ServiceUnavailable`, canary still 50, record `rolling_back`; the rerun finishes the rollback: canary 0",
                         f"champion v{service.champion} = served; audit `rollback`", failed_patches=len(service.ctl.failed))
    assert figures["failed_outside_fault"] == 0, figures["failed_statuses"]
    assert figures["lost"] == 0 and figures["logged"] > 20, figures


# -- MLflow down at promotion -------------------------------------------------------------------------------

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


def _kubeconfig(path: Path, host: str) -> Path:
    """A kubeconfig naming the API stand-in (what `driftloop registry reconcile --isvc` reads)."""
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "standin",
                                "clusters": [{"name": "standin", "cluster": {"server": host}}], "users": [{"name": "me", "user": {}}],
                                "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "me"}}]}))
    return path


def test_mlflow_down_at_promotion(request, service: Service, store, registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow is down when the rollout promotes: traffic is promoted, the registry is not, the record says
    `promoting`; the rerun completes the promotion from the record, and `driftloop registry reconcile --isvc`
    (reading the record through the kubernetes client) then finds registry and service in agreement."""
    from click.testing import CliRunner

    from driftloop.cli import cli

    champion, challenger = service.champion, service.challenger
    flaky, source = _MlflowDownAtPromotion(registry), FakeSource()
    sleep = traffic_sleep(source, champion, challenger, pause=PAUSE)
    with client_traffic(service) as traffic:
        with pytest.raises(ServiceUnavailable, match="the registry promotion failed until the 1s deadline"):
            run_rollout(policy_dict(checks=CHECKS), service.backend(), source, flaky, challenger_uri=f"models:/{MODEL}/{challenger}",
                        sleep=sleep, retry_deadline=1.0)
        assert flaky.attempts >= 2  # retried with backoff
        assert service.canary() is None and service.record().phase == "promoting"  # served: the challenger; registry: the champion, recorded
        assert str(registry.get(MODEL, "champion").version) == champion
        flaky.down = False  # MLflow is back: the rerun completes the promotion from the record
        result = run_rollout(policy_dict(checks=CHECKS), service.backend(), source, flaky, challenger_uri=f"models:/{MODEL}/{challenger}",
                             sleep=sleep, lease_seconds=0.0)
        service.settle()
    # `driftloop registry reconcile --isvc` reads the service's record through the kubernetes client: they agree
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "kubeconfig", service.cluster.api_client.configuration.host)))
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_TRACKING_URI", store.tracking_uri)
    monkeypatch.setenv("DRIFTLOOP_WORKDIR", str(tmp_path / "w"))
    out = CliRunner().invoke(cli, ["registry", "reconcile", "--model", MODEL, "--isvc", MODEL, "--namespace", NS])
    assert out.exit_code == 0 and f"rollout of version {challenger} (champion {champion}) is promoted" in out.output, out.output
    assert "nothing to repair" in out.output, out.output
    assert result.outcome == "promoted" and service.record().phase == "promoted"
    assert service.canary() is None and service.served_version() == challenger == str(registry.get(MODEL, "champion").version)
    event = registry.history(MODEL)[-1]
    assert (event["event"], str(event["version"]), str(event["previous"])) == ("promote", challenger, champion)
    figures = finish_row(request, service, traffic, "MLflow down at promotion (1 s deadline), then rerun", 40,
                         f"first run: traffic promoted, registry promote tried {flaky.attempts} times, raises with record `promoting`; "
                         "the rerun completes it, record `promoted`; `driftloop registry reconcile --isvc`: nothing to repair",
                         f"champion v{challenger} = served, audit `promote` (previous v{champion})", registry_attempts=flaky.attempts)
    assert figures["failed_outside_fault"] == 0, figures["failed_statuses"]
    assert figures["lost"] == 0 and figures["logged"] > 20, figures


# -- two rollouts at once -----------------------------------------------------------------------------------

def test_two_rollouts_at_once(request, service: Service, registry) -> None:
    champion, challenger = service.champion, service.challenger
    source, holding, release = FakeSource(), threading.Event(), threading.Event()
    first: dict[str, Any] = {}

    def slow_sleep(seconds: float) -> None:
        traffic_sleep(source, champion, challenger, pause=PAUSE)(seconds)
        holding.set()
        release.wait(120)

    def run_first() -> None:
        try:
            first["result"] = run_rollout(policy_dict(checks=CHECKS), service.backend(), source, registry,
                                          challenger_uri=f"models:/{MODEL}/{challenger}", sleep=slow_sleep, holder="scheduled")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            first["error"] = exc
            holding.set()

    with client_traffic(service) as traffic:
        thread = threading.Thread(target=run_first)
        thread.start()
        assert holding.wait(900) and "error" not in first, first
        moves_before = len(service.ctl.history[MODEL])
        with pytest.raises(RolloutConflict, match="is in progress by scheduled: progressing at step 1, 50%") as err:
            run_rollout(policy_dict(checks=CHECKS), service.backend(), FakeSource(), registry, challenger_uri=f"models:/{MODEL}/{challenger}",
                        holder="emergency", sleep=lambda s: None)
        assert len(service.ctl.history[MODEL]) == moves_before  # the refused rollout moved nothing
        release.set()
        thread.join(300)
        service.settle()
    assert first["result"].outcome == "promoted" and service.canary() is None and service.served_version() == challenger
    assert str(registry.get(MODEL, "champion").version) == challenger and service.record().holder == "scheduled"
    figures = finish_row(request, service, traffic, "two rollouts at once", 50,
                         f"the second refused with '{str(err.value)[:70]}...' and 0 PATCHes; the first promotes",
                         f"champion v{challenger} = served")
    assert figures["failed_outside_fault"] == 0, figures["failed_statuses"]
    assert figures["lost"] == 0 and figures["logged"] > 20, figures


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
    # ready_timeout as the stand-in controller's (600 s): a challenger that starts slowly on a loaded machine is not the fault under test
    return LocalBackend(MODEL, f"models:/{MODEL}@champion", tracking_uri=store.tracking_uri, log_dir=log_dir, work_dir=work, champion_url=url,
                        ready_timeout=600.0)


def finish_local_row(request: pytest.FixtureRequest, local_champion: tuple[str, Path], traffic: ReplayTraffic, started: float, row: str,
                     order: int, end_state: str, aliases: str) -> dict[str, Any]:
    """A local row's figures: client failures, and records lost from the predictors' own prediction log."""
    logged, lost = logged_lost(local_champion[1], traffic)
    figures = {"order": order, "backend": "local processes", "end_state": end_state, "aliases": aliases, "requests": traffic.sent,
               "failed_outside_fault": traffic.failed, "failed_inside_fault": 0, "logged": logged, "lost": lost,
               "seconds": round(time.monotonic() - started, 1)}
    write_row(request.node.nodeid, row, **figures)
    return figures


def test_local_restart_resumes_from_the_state_file(request, store, registry, local_champion, tmp_path: Path) -> None:
    from serving.canary.state import FileState
    from serving.prometheus import DirectSource

    good1, good2 = store.versions["good1"], store.versions["good2"]
    started = time.monotonic()
    work = tmp_path / "servers"
    # what a controller killed (kill -9) right after its 50% move leaves in the state file
    FileState(work / f"{MODEL}-rollout.json").write_state(
        RolloutRecord(MODEL, good1, good2, "killed-controller", phase="progressing", step=1, percent=50, started_at=time.time() - 5,
                      updated_at=time.time() - 5), "0")
    lines: list[str] = []
    with _local(store, local_champion, work) as b:
        b.start()
        with live_traffic(b.url, threads=2) as traffic:
            result = run_rollout(policy_dict(steps=[25, 50, 100], checks=CHECKS), b, DirectSource(b.metrics_targets), registry,
                                 challenger_uri=f"models:/{MODEL}/{good2}", on_step=lines.append, lease_seconds=0.0)
            final = b.current_traffic()
        end, _ = b.read_state()
    assert result.outcome == "promoted", lines
    assert lines[0].startswith("resuming") and [s["percent"] for s in result.steps if s["decision"] != "hold"] == [50, 100]
    assert traffic.failures() == [] and len(traffic.results) > 50
    assert final == 0 and str(registry.get(MODEL, "champion").version) == good2 and end is not None and end.phase == "promoted"
    figures = finish_local_row(request, local_champion, traffic, started, "controller restarted after its 50% move (the record a "
                               "`kill -9` leaves)", 70, f"resumed at 50%, analysed steps [50, 100], promoted; router champion = v{good2}",
                               f"champion v{good2} = served")
    assert figures["lost"] == 0, figures


class _Boom(Exception):
    pass


@pytest.mark.parametrize("fault", ["bug", "sigterm"])
def test_local_failure_after_traffic_moved_rolls_back(request, store, registry, local_champion, tmp_path: Path, fault: str) -> None:
    """A bug in the analysis (not a DriftloopError) or SIGTERM mid-rollout: traffic back on the champion, no client request lost."""
    from serving.canary.controller import RolloutInterrupted
    from serving.prometheus import DirectSource

    good1, good2 = store.versions["good1"], store.versions["good2"]
    started = time.monotonic()
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
        with live_traffic(b.url, threads=2) as traffic, pytest.raises(expected) as err:
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
    figures = finish_local_row(request, local_champion, traffic, started,
                               f"{'SIGTERM' if fault == 'sigterm' else 'a bug (a non-driftloop exception)'} after the 50% move", 71 + (fault == "sigterm"),
                               "rolled back" + (", `RolloutInterrupted` '... traffic is back on the champion'" if fault == "sigterm" else
                                                ", the exception re-raised") + "; canary 0, challenger process stopped, record `rolled_back`",
                               f"champion v{good1}, no challenger alias, audit `rollback` naming the " + ("signal" if fault == "sigterm" else "exception"))
    assert figures["lost"] == 0, figures


def test_local_two_rollouts_at_once(request, store, registry, local_champion, tmp_path: Path) -> None:
    """A second controller on the same machine (same work directory, so the same state file) is refused
    while the first holds the service at 50%; it starts no process and moves no traffic."""
    from serving.prometheus import DirectSource

    good2 = store.versions["good2"]
    started = time.monotonic()
    holding, release, first = threading.Event(), threading.Event(), {}
    work = tmp_path / "servers"

    def slow_sleep(seconds: float) -> None:
        time.sleep(seconds)
        holding.set()
        release.wait(120)

    with _local(store, local_champion, work) as b:
        b.start()

        def run_first() -> None:
            try:
                first["result"] = run_rollout(policy_dict(checks=CHECKS), b, DirectSource(b.metrics_targets), registry,
                                              challenger_uri=f"models:/{MODEL}/{good2}", sleep=slow_sleep, holder="scheduled")
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                first["error"] = exc
                holding.set()

        with live_traffic(b.url, threads=2) as traffic:
            thread = threading.Thread(target=run_first)
            thread.start()
            assert holding.wait(900) and "error" not in first, first
            second = _local(store, local_champion, work)  # another controller process's backend: nothing started yet
            with pytest.raises(RolloutConflict, match="is in progress by scheduled: progressing at step 1, 50%") as err:
                run_rollout(policy_dict(checks=CHECKS), second, DirectSource(b.metrics_targets), registry,
                            challenger_uri=f"models:/{MODEL}/{good2}", holder="emergency", sleep=lambda s: None)
            assert second.challenger is None and second.router is None and b.current_traffic() == 50  # the refused rollout moved nothing
            release.set()
            thread.join(300)
            time.sleep(0.5)
        end, _ = b.read_state()
        final = b.current_traffic()
    assert first["result"].outcome == "promoted", first
    assert end is not None and end.phase == "promoted" and end.holder == "scheduled" and final == 0  # 0: no canary, the challenger is the champion
    assert str(registry.get(MODEL, "champion").version) == good2 and traffic.failures() == []
    figures = finish_local_row(request, local_champion, traffic, started, "two rollouts at once", 73,
                               f"the second refused with '{str(err.value)[:70]}...', no process started, 0 traffic moves; the first promotes",
                               f"champion v{good2} = served")
    assert figures["lost"] == 0, figures


def test_local_prometheus_503_mid_analysis(request, store, registry, local_champion, tmp_path: Path) -> None:
    """The servers' metrics until the second analysis, then a Prometheus answering 503 in plain text: rolled back."""
    from test_prometheus import _Answer

    from serving.prometheus import DirectSource

    good1, good2 = store.versions["good1"], store.versions["good2"]
    started, calls = time.monotonic(), [0]
    server = _Answer(503, "Service Unavailable")
    try:
        with _local(store, local_champion, tmp_path / "servers") as b:
            b.start()
            flaky = _FlakyPrometheus(DirectSource(b.metrics_targets), server.url)

            def sleep(seconds: float) -> None:
                time.sleep(seconds)
                calls[0] += 1
                flaky.broken = calls[0] >= 2

            with live_traffic(b.url, threads=2) as traffic:
                result = run_rollout(policy_dict(steps=[25, 50, 100], checks=CHECKS), b, flaky, registry,
                                     challenger_uri=f"models:/{MODEL}/{good2}", sleep=sleep)
                time.sleep(0.5)
            final = b.current_traffic()
            end, _ = b.read_state()
    finally:
        server.close()
    assert result.outcome == "rolled_back" and "answered 503" in result.reason, result.reason
    assert final == 0 and b.challenger is None and end is not None and end.phase == "rolled_back" and traffic.failures() == []
    assert str(registry.get(MODEL, "champion").version) == good1 and registry.get(MODEL, "challenger") is None
    figures = finish_local_row(request, local_champion, traffic, started, "Prometheus answering 503 (plain text) at the second analysis", 74,
                               f"rolled back after {len(result.steps)} analysed step; canary 0, challenger process stopped, record `rolled_back`",
                               f"champion v{good1} = served, challenger alias dropped")
    assert figures["lost"] == 0, figures


def test_local_mlflow_down_at_promotion(request, store, registry, local_champion, tmp_path: Path) -> None:
    """MLflow down when the local rollout promotes: the router serves the challenger, the record says `promoting`;
    the rerun (MLflow back) completes the registry and the record."""
    from serving.prometheus import DirectSource

    good1, good2 = store.versions["good1"], store.versions["good2"]
    started, flaky = time.monotonic(), _MlflowDownAtPromotion(registry)
    with _local(store, local_champion, tmp_path / "servers") as b:
        b.start()
        with live_traffic(b.url, threads=2) as traffic:
            with pytest.raises(ServiceUnavailable, match="the registry promotion failed until the 1s deadline"):
                run_rollout(policy_dict(checks=CHECKS), b, DirectSource(b.metrics_targets), flaky, challenger_uri=f"models:/{MODEL}/{good2}",
                            retry_deadline=1.0)
            left, _ = b.read_state()
            assert left is not None and left.phase == "promoting" and str(registry.get(MODEL, "champion").version) == good1
            flaky.down = False
            result = run_rollout(policy_dict(checks=CHECKS), b, DirectSource(b.metrics_targets), flaky, challenger_uri=f"models:/{MODEL}/{good2}",
                                 lease_seconds=0.0)
            time.sleep(0.5)
        end, _ = b.read_state()
        served = b.champion.cmd[b.champion.cmd.index("--model-uri") + 1] if b.champion else ""
    assert result.outcome == "promoted" and end is not None and end.phase == "promoted" and traffic.failures() == []
    assert served == f"models:/{MODEL}/{good2}" and str(registry.get(MODEL, "champion").version) == good2
    event = registry.history(MODEL)[-1]
    assert (event["event"], str(event["version"]), str(event["previous"])) == ("promote", good2, good1)
    figures = finish_local_row(request, local_champion, traffic, started, "MLflow down at promotion (1 s deadline), then rerun", 75,
                               f"first run: router on the challenger, registry promote tried {flaky.attempts} times, raises with record "
                               "`promoting`; the rerun (a fresh challenger process, as a new controller would start) completes it: `promoted`",
                               f"champion v{good2} = served, audit `promote` (previous v{good1})")
    assert figures["lost"] == 0, figures


# -- a predictor pod restarting mid-step (real Prometheus) ---------------------------------------------------

def _prometheus_value(url: str, promql: str) -> float:
    import httpx

    result = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()["data"]["result"]
    return sum(float(r["value"][1]) for r in result)


def test_predictor_pod_restart_mid_step_keeps_its_errors(request, service: Service, registry) -> None:
    """The challenger's container fails 30% of requests, is killed (kill -9) mid-step and restarts clean:
    the step must still see the errors it served before the crash and roll back."""
    from kubernetes import client

    from serving.canary.k8s import GROUP, PLURAL, VERSION
    from serving.prometheus import PrometheusSource
    from tests.rehearsal.cluster import LOG_SINK_SERVICE
    from tests.rehearsal.kserve_controller import predictor_isvc

    champion, challenger, ctl, prom = service.champion, service.challenger, service.ctl, service.cluster.prometheus_url
    failing = predictor_isvc(MODEL, NS, MODEL, f"models:/{MODEL}/{challenger}", logger_url=LOG_SINK_SERVICE, extra_args=("--inject-error-rate", "0.3"))
    client.CustomObjectsApi(service.cluster.api_client).patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, MODEL, {"spec": {"predictor": {
        "canaryTrafficPercent": 0, "containers": failing["spec"]["predictor"]["containers"]}}})  # the challenger revision, at 0%
    ctl.wait_settled(MODEL, namespace=NS)
    errors_query = f'driftloop_request_errors_total{{model_name="{MODEL}",model_version="{challenger}",kind="server"}}'
    seen: dict[str, Any] = {}

    def sleep(seconds: float) -> None:
        if seen:
            time.sleep(seconds)
            return
        deadline = time.monotonic() + 60  # the step's traffic reaches the failing challenger and Prometheus scrapes its errors
        while _prometheus_value(prom, errors_query) < 10 and time.monotonic() < deadline:
            time.sleep(0.5)
        seen["errors_before_crash"] = _prometheus_value(prom, errors_query)
        seen["failed_before_crash"] = traffic.failed
        pod = ctl.pods(MODEL, NS)[ctl.isvc_revision(MODEL, NS)]
        clean = [a for i, a in enumerate(pod.argv) if a != "--inject-error-rate" and (i == 0 or pod.argv[i - 1] != "--inject-error-rate")]
        ctl.restart_pod(MODEL, namespace=NS, argv=clean)
        seen["failed_until_restarted"] = traffic.failed
        time.sleep(seconds)

    with client_traffic(service) as traffic:
        # max 0.005: with the restart's clean counters alone the step sees 0 errors (the old defect: promoted);
        # the >= 10 errors served before the crash exceed it at any request rate these threads reach in 8 s
        result = run_rollout(policy_dict(steps=[50, 100], interval_seconds=8, checks=[{"metric": "error_rate", "max": 0.005}]),
                             service.backend(), PrometheusSource(prom), registry, challenger_uri=f"models:/{MODEL}/{challenger}", sleep=sleep)
        service.settle()
    counted = [c for s in result.steps for c in s["checks"] if c.get("metric") == "error_rate"]
    inside = seen.get("failed_until_restarted", 0)
    rates = ", ".join(f"{c['value']:.3f}" for c in counted if c.get("value") is not None)
    figures = finish_row(request, service, traffic, "the challenger's predictor container (30% injected errors) killed with `kill -9` "
                         "mid-step and restarted clean on the same address", 60,
                         f"{result.outcome.replace('_', ' ')} at step 1 (error rate over the step {rates} > 0.005: "
                         "the errors served before the kill are kept)", f"champion v{champion} = served",
                         inside_fault=inside, reason=result.reason[:120], errors_before_crash=seen.get("errors_before_crash"),
                         failed_before_crash=seen.get("failed_before_crash"))
    statuses = figures["failed_statuses"]
    assert seen["errors_before_crash"] >= 10
    # requests fail only inside the fault: the injected 500s, those in flight at the kill (502) or waiting for the restart
    assert figures["failed_outside_fault"] == 0, statuses
    assert {status for status, _ in statuses} <= {500, 502, -1}, statuses  # -1: a client timeout (30 s) while the container restarts
    assert result.outcome == "rolled_back" and result.reason.startswith("error_rate"), (result.reason, counted)
    assert service.canary() == 0 and service.served_version() == champion and str(registry.get(MODEL, "champion").version) == champion
    assert figures["lost"] == 0, figures  # the agent logs what it answered: a container's crash loses no record

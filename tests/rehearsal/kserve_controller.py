"""A stand-in KServe controller behind the Kubernetes API stand-in: it acts on InferenceServices
the way KServe (serverless mode, Knative revisions) does, with real processes.

On every accepted create or patch (:class:`tests.serving.k8s_standin.KServeStandIn` validates
them against the CRD and keeps ``resourceVersion``), a worker thread per InferenceService:

- starts one pod per revision that carries traffic: the predictor container from the
  revision's pod template (``command``/``args``; env from ``envFrom``/``env`` resolved against
  the cluster's ConfigMaps and Secrets, plus what the kubelet adds, :attr:`pod_env`), run as a
  real process in a fresh working directory, on a free port standing in for the pod IP
  (``--http-port`` is rewritten), and the pod's *agent* (KServe's logger sidecar): a proxy in
  front of the container that posts every request and response as binary CloudEvents to
  ``spec.predictor.logger.url`` (a Service name mapped to the log sink's real URL);
- routes traffic by ``canaryTrafficPercent`` through one :mod:`serving.router` process per
  InferenceService (champion = previously rolled-out revision, challenger = latest);
- writes status as KServe does: ``Ready``/``PredictorReady`` conditions, ``url``/``address``,
  ``components.predictor`` revisions and ``traffic`` (each status write bumps
  ``resourceVersion``, so a client holding an older one gets 409 as on a real cluster);
- stops the pods of revisions that left the traffic;
- rewrites Prometheus's file_sd targets (the predictor containers' ``/metrics``) as pods come and go.

:meth:`KServeController.restart_pod` kills a predictor container (SIGKILL) and starts it again
on the same address, as the kubelet restarts a crashed container: its counters start from zero.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.serving.k8s_standin import KServeStandIn
from tests.serving.serving_fixtures import (
    free_port,
    start_server,
    stop_server,
    wait_ready,
)

CE_TYPE = "org.kubeflow.serving.inference.{}"


def predictor_isvc(name: str, namespace: str, model: str, model_uri: str, logger_url: str | None = None, extra_args: tuple[str, ...] = ()) -> dict:
    """A custom-container InferenceService shaped like manifests/base/inferenceservices.yaml's predictor
    (``python -m serving.predictor``, settings from the driftloop-settings ConfigMap, the logger when given)."""
    predictor: dict[str, Any] = {
        "canaryTrafficPercent": 100,
        "containers": [{"name": "kserve-container", "image": "ghcr.io/driftloop/driftloop:test", "command": ["python", "-m", "serving.predictor"],
                        "args": ["--model-name", model, "--model-uri", model_uri, "--http-port", "8080", *extra_args],
                        "envFrom": [{"configMapRef": {"name": "driftloop-settings"}}],
                        "env": [{"name": "DRIFTLOOP_SERVER_HOST", "value": "0.0.0.0"}]}],
    }
    if logger_url:
        predictor["logger"] = {"mode": "all", "url": logger_url}
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": name, "namespace": namespace},
            "spec": {"predictor": predictor}}


class PodFailed(RuntimeError):
    """A pod could not start (bad env reference, container exited)."""


@dataclass
class Pod:
    """One predictor pod: the container process and the agent in front of it."""

    name: str
    revision: str
    port: int  # the container's port (what Prometheus scrapes)
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen
    agent: Agent
    restarts: int = 0

    @property
    def container_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "container.log"


class Agent:
    """KServe's agent sidecar: forwards to the container and posts request/response CloudEvents to the logger URL.

    Runs in a thread of this process (uvicorn); counts the requests it forwarded with status.
    """

    def __init__(self, upstream: str, isvc: str, revision: str, logger_url: str | None, served: Counter) -> None:
        self.upstream, self.isvc, self.revision, self.logger_url = upstream, isvc, revision, logger_url
        self.served = served  # shared per controller: revision -> requests answered 200
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_failures = 0
        self.hold_seconds = 120.0  # how long a request waits for a restarting container (Knative's queue-proxy holds them too)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100))
        pending: set[asyncio.Task] = set()

        async def post_event(kind: str, rid: str, body: bytes) -> None:
            headers = {"ce-id": rid, "ce-type": CE_TYPE.format(kind), "ce-specversion": "1.0", "ce-source": f"http://localhost:9081/{self.revision}",
                       "ce-inferenceservicename": self.isvc, "ce-namespace": "driftloop", "content-type": "application/json"}
            for attempt in range(3):
                try:
                    r = await client.post(self.logger_url or "", content=body, headers=headers)
                    if r.status_code < 500:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2 * (attempt + 1))
            self.log_failures += 1

        def log(kind: str, rid: str, body: bytes) -> None:
            if self.logger_url:
                task = asyncio.get_running_loop().create_task(post_event(kind, rid, body))
                pending.add(task)
                task.add_done_callback(pending.discard)

        async def forward(request: Request) -> Response:
            body = await request.body()
            rid = request.headers.get("x-request-id") or uuid.uuid4().hex
            predict = request.method == "POST" and request.url.path.endswith((":predict", "/infer"))
            if predict:
                log("request", rid, body)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            headers["x-request-id"] = rid
            deadline = time.monotonic() + self.hold_seconds
            while True:
                try:
                    up = await client.request(request.method, f"{self.upstream}{request.url.path}", content=body, headers=headers,
                                              params=request.query_params)
                    break
                except httpx.ConnectError as exc:  # container restarting: the queue-proxy holds the request until it is back
                    if time.monotonic() > deadline:
                        return JSONResponse({"error": f"container unreachable: {exc}"}, status_code=502)
                    await asyncio.sleep(0.1)
                except httpx.TransportError as exc:  # the request reached the container, which died: not retried
                    return JSONResponse({"error": f"container failed mid-request: {exc}"}, status_code=502)
            if predict and up.status_code == 200:
                self.served[self.revision] += 1
                log("response", rid, up.content)
            out = {k: v for k, v in up.headers.items() if k.lower() in ("content-type", "x-model-version", "x-request-id")}
            return Response(up.content, status_code=up.status_code, headers=out)

        async def ready(request: Request) -> Response:
            try:
                up = await client.get(f"{self.upstream}/v2/health/ready")
                return Response(up.content, status_code=up.status_code)
            except httpx.TransportError:
                return JSONResponse({"ready": False}, status_code=503)

        return Starlette(routes=[Route("/v2/health/ready", ready), Route("/{path:path}", forward, methods=["GET", "POST"])])

    def start(self) -> None:
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning", access_log=False))
        self._thread = threading.Thread(target=self._server.run, daemon=True, name=f"agent-{self.revision}")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


@dataclass
class Service:
    """What the controller runs for one InferenceService."""

    name: str
    templates: dict[str, dict] = field(default_factory=dict)  # revision -> pod template at its creation
    pods: dict[str, Pod] = field(default_factory=dict)  # revision -> its pod
    router: subprocess.Popen | None = None
    router_port: int = 0
    wake: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    error: str = ""
    busy: bool = False  # a write the controller has not acted on yet

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"


class KServeController(KServeStandIn):
    """The API stand-in plus a KServe-like controller running real predictor pods (see the module doc).

    ``config_maps``/``secrets`` resolve the containers' env references; ``services`` maps
    in-cluster Service URLs (``http://driftloop-log-sink/``) to real ones; ``pod_env`` is what
    the kubelet adds to every pod; ``targets_file`` is Prometheus's file_sd file.
    """

    def __init__(self, root: Path, *, config_maps: dict[str, dict[str, str]], secrets: dict[str, dict[str, str]],
                 services: dict[str, str], pod_env: dict[str, str], targets_file: Path, ready_timeout: float = 600.0) -> None:
        super().__init__([])
        self.root = root
        self.config_maps, self.secrets, self.services, self.pod_env = config_maps, secrets, services, pod_env
        self.targets_file = targets_file
        self.ready_timeout = ready_timeout
        self.services_run: dict[tuple[str, str], Service] = {}
        self.served: Counter = Counter()  # revision -> requests its pods answered 200 (kept across container restarts)
        self._stopping = False
        self._write_targets()

    # -- API-side hooks (lock held) ------------------------------------------------------
    def _reconcile(self, key: tuple[str, str], new_revision: bool) -> None:
        super()._reconcile(key, new_revision)  # revision names, traffic split (KServe's rules)
        obj = self.objects[key]
        svc = self.services_run.setdefault(key, Service(key[1]))
        pred = obj["status"]["components"]["predictor"]
        if new_revision:
            svc.templates[pred["latestCreatedRevision"]] = copy.deepcopy(self.pod_template(obj))
        self._write_status(key)

    def on_change(self, key: tuple[str, str], new_revision: bool) -> None:
        svc = self.services_run[key]
        svc.busy = True
        svc.wake.set()
        if svc.thread is None:
            svc.thread = threading.Thread(target=self._worker, args=(key,), daemon=True, name=f"kserve-{key[1]}")
            svc.thread.start()

    def _write_status(self, key: tuple[str, str]) -> None:
        """Status from what runs: ready revisions, conditions, URL (lock held)."""
        obj = self.objects[key]
        svc = self.services_run[key]
        status = obj["status"]
        pred = status["components"]["predictor"]
        latest = pred["latestCreatedRevision"]
        ready = [r for r in svc.templates if r in svc.pods and self._alive(svc.pods[r])]
        pred["latestReadyRevision"] = latest if latest in ready else (ready[-1] if ready else None)
        if pred["latestReadyRevision"] is None:
            pred.pop("latestReadyRevision")
        serving = [t["revisionName"] for t in pred.get("traffic", []) if t.get("percent")]
        ok = latest in ready and all(r in ready for r in serving) and svc.router is not None and not svc.error
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cond = {"status": "True" if ok else "False", "lastTransitionTime": now}
        if not ok:
            cond.update({"reason": "PodFailed" if svc.error else "RevisionMissing", "message": svc.error or f"revision {latest} is not ready yet"})
        status["conditions"] = [{"type": t, **cond} for t in ("IngressReady", "PredictorReady", "Ready")]
        if svc.router is not None:
            status["url"] = svc.url
            status["address"] = {"url": svc.url}
            pred["url"] = svc.url
        status["observedGeneration"] = obj["metadata"]["generation"]
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)

    # -- the controller loop ------------------------------------------------------------
    def _worker(self, key: tuple[str, str]) -> None:
        svc = self.services_run[key]
        while not self._stopping:
            if not svc.wake.wait(timeout=0.5):
                continue
            svc.wake.clear()
            try:
                self._sync(key)
                svc.error = ""
            except PodFailed as exc:
                svc.error = str(exc)
            with self.lock:
                self._write_status(key)
                svc.busy = svc.wake.is_set()

    def _sync(self, key: tuple[str, str]) -> None:
        """Make the processes match the spec: pods for serving revisions, the router's split, old pods stopped."""
        svc = self.services_run[key]
        with self.lock:
            obj = copy.deepcopy(self.objects[key])
        pred = obj["status"]["components"]["predictor"]
        latest = pred["latestCreatedRevision"]
        traffic = {t["revisionName"]: t.get("percent", 0) for t in pred.get("traffic", [])}
        wanted = [r for r in dict.fromkeys([*traffic, latest])]
        for rev in wanted:
            if rev not in svc.pods:
                svc.pods[rev] = self._start_pod(key, rev, obj)
        previous = next((r for r in traffic if r != latest), None)
        canary = traffic.get(latest, 100)
        if previous is None:
            split = {"champion": svc.pods[latest].agent.url, "challenger": None, "percent": 0}
        else:
            split = {"champion": svc.pods[previous].agent.url, "challenger": svc.pods[latest].agent.url, "percent": canary}
        self._route(svc, split)
        for rev in [r for r in svc.pods if r not in wanted]:
            self._stop_pod(svc.pods.pop(rev))
        self._write_targets()

    def _route(self, svc: Service, split: dict[str, Any]) -> None:
        if svc.router is None:
            svc.router_port = free_port()
            cmd = [sys.executable, "-m", "serving.router", "--port", str(svc.router_port), "--champion", split["champion"]]
            svc.router = start_server(cmd, self.root / "pods" / f"{svc.name}-router.log", env=self._base_env(self.root / "pods"))
            deadline = time.monotonic() + self.ready_timeout  # generous: a loaded CI machine starts Python slowly
            while True:
                try:
                    if httpx.get(f"{svc.url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if svc.router.poll() is not None or time.monotonic() > deadline:
                    raise PodFailed(f"router of {svc.name} did not start; see {self.root / 'pods' / f'{svc.name}-router.log'}")
                time.sleep(0.1)
        r = httpx.post(f"{svc.url}/admin/backends", json=split, timeout=10)
        r.raise_for_status()

    # -- pods ---------------------------------------------------------------------------
    def _base_env(self, home: Path) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8", **self.pod_env}

    def container_env(self, container: dict, home: Path) -> dict[str, str]:
        """The container's environment as the kubelet builds it (envFrom, then env; valueFrom resolved)."""
        env = self._base_env(home)
        for src in container.get("envFrom") or []:
            ref = src.get("configMapRef") or src.get("secretRef") or {}
            store = self.config_maps if "configMapRef" in src else self.secrets
            if ref.get("name") not in store and not ref.get("optional"):
                raise PodFailed(f"envFrom {ref.get('name')!r} does not exist")
            env.update(store.get(ref.get("name"), {}))
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
                continue
            vf = item.get("valueFrom") or {}
            ref = vf.get("secretKeyRef") or vf.get("configMapKeyRef")
            if ref is None:
                continue  # fieldRef/resourceFieldRef: nothing the predictor reads
            store = self.secrets if "secretKeyRef" in vf else self.config_maps
            value = store.get(ref["name"], {}).get(ref["key"])
            if value is None:
                if ref.get("optional"):
                    continue
                raise PodFailed(f"env {item['name']}: key {ref['key']!r} of {ref['name']!r} does not exist (CreateContainerConfigError)")
            env[item["name"]] = value
        env["DRIFTLOOP_SERVER_HOST"] = "127.0.0.1"  # the pod's address here is loopback, not 0.0.0.0 on a pod network
        return env

    def _start_pod(self, key: tuple[str, str], rev: str, obj: dict) -> Pod:
        svc = self.services_run[key]
        template = svc.templates[rev]
        containers = template.get("containers") or []
        if not containers:
            raise PodFailed(f"{key[1]}: the stand-in runs custom-container predictors only (manifests/base/inferenceservices.yaml), not spec.predictor.model")
        container = containers[0]
        port = free_port()
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        argv = [sys.executable if a == "python" else a for a in argv]
        for i, a in enumerate(argv[:-1]):
            if a == "--http-port":
                argv[i + 1] = str(port)  # the container port, mapped to this pod's "IP"
        name = f"{rev}-deployment-{uuid.uuid4().hex[:5]}"
        workdir = self.root / "pods" / name
        workdir.mkdir(parents=True, exist_ok=True)
        env = self.container_env(container, workdir)
        logger = template.get("logger") or {}
        logger_url = self.services.get(logger.get("url", ""), logger.get("url")) if logger else None
        agent = Agent(f"http://127.0.0.1:{port}", key[1], rev, logger_url, self.served)
        proc = start_server(argv, workdir / "container.log", env=env, cwd=workdir)
        pod = Pod(name, rev, port, argv, env, workdir, proc, agent)
        self._wait_ready(pod)
        agent.start()
        return pod

    def _wait_ready(self, pod: Pod) -> None:
        try:
            wait_ready(pod.container_url, pod.proc, timeout=self.ready_timeout, log=pod.log)
        except (RuntimeError, TimeoutError) as exc:
            stop_server(pod.proc)
            raise PodFailed(f"pod {pod.name}: {str(exc)[:300]}") from None

    def _stop_pod(self, pod: Pod) -> None:
        pod.agent.stop()
        stop_server(pod.proc)

    @staticmethod
    def _alive(pod: Pod) -> bool:
        return pod.proc.poll() is None

    def restart_pod(self, name: str, revision: str | None = None, namespace: str = "driftloop", argv: list[str] | None = None) -> Pod:
        """SIGKILL the predictor container of ``revision`` (default: the latest) and start it again on the same port.

        ``argv`` replaces the container's command line after the restart (a test hook: the
        fault that made the container crash, e.g. ``--inject-error-rate``, is gone after it).
        """
        key = (namespace, name)
        svc = self.services_run[key]
        with self.lock:
            rev = revision or self.objects[key]["status"]["components"]["predictor"]["latestCreatedRevision"]
        pod = svc.pods[rev]
        pod.proc.send_signal(signal.SIGKILL)
        pod.proc.wait()
        if argv is not None:
            pod.argv = list(argv)
        pod.proc = start_server(pod.argv, pod.log, env=pod.env, cwd=pod.workdir)
        pod.restarts += 1
        self._wait_ready(pod)
        return pod

    def isvc_revision(self, name: str, namespace: str = "driftloop") -> str:
        """The latest created revision of an InferenceService."""
        with self.lock:
            return str(self.objects[(namespace, name)]["status"]["components"]["predictor"]["latestCreatedRevision"])

    def pods(self, name: str, namespace: str = "driftloop") -> dict[str, Pod]:
        """Revision -> running pod of an InferenceService."""
        svc = self.services_run.get((namespace, name))
        return dict(svc.pods) if svc else {}

    def _write_targets(self) -> None:
        """Prometheus file_sd: every predictor container, labelled like the PodMonitor's relabelling would."""
        groups = [{"targets": [f"127.0.0.1:{p.port}"], "labels": {"namespace": ns, "pod": p.name, "revision": p.revision, "isvc": name}}
                  for (ns, name), svc in list(self.services_run.items()) for p in list(svc.pods.values())]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.targets_file)  # atomic: Prometheus never reads half a file

    def wait_settled(self, name: str, timeout: float = 600.0, namespace: str = "driftloop") -> dict:
        """Until the controller has acted on the latest write and the service is Ready; returns the object."""
        deadline = time.monotonic() + timeout
        key = (namespace, name)
        while True:
            with self.lock:
                obj = copy.deepcopy(self.objects.get(key) or {})
            svc = self.services_run.get(key)
            status = obj.get("status") or {}
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
            if ready and svc is not None and not svc.busy:
                return obj
            if svc is not None and svc.error:
                raise PodFailed(svc.error)
            if time.monotonic() > deadline:
                logs = sorted((self.root / "pods").glob("*/container.log"), key=lambda f: f.stat().st_mtime)
                tail = logs[-1].read_text(errors="replace")[-1500:] if logs else ""
                raise TimeoutError(f"InferenceService {name} not ready after {timeout:.0f}s: {status.get('conditions')}; newest pod log: {tail}")
            time.sleep(0.1)

    def serve_within(self, stack: Any, port: int) -> str:
        """Serve the API on ``port`` until ``stack`` (an ExitStack) closes, then stop every pod; returns the API's URL."""
        server, thread = self.serve(port)

        def stop() -> None:
            self.stop()
            server.should_exit = True
            thread.join(timeout=10)

        stack.callback(stop)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stop every pod, agent and router."""
        self._stopping = True
        for svc in list(self.services_run.values()):
            if svc.thread is not None:
                svc.thread.join(timeout=30)
            for pod in list(svc.pods.values()):
                self._stop_pod(pod)
            svc.pods.clear()
            if svc.router is not None:
                stop_server(svc.router)
                svc.router = None
        self._write_targets()

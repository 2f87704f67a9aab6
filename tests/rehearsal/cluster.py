"""The rehearsal's cluster: every shared service a driftloop deployment talks to, started fresh and real.

:func:`running_cluster` starts, under one root folder:

- PostgreSQL databases of their own (the server on 127.0.0.1:5432) for the Feast registry,
  Feast's PostgreSQL offline store, the MLflow backend (plus MLflow's auth store) and the
  decision ledger; a Redis database index of its own for Feast's online store;
- the MLflow tracking server with ``--serve-artifacts`` behind MLflow's basic-auth app (a
  writer for pipeline steps, a read-only user for predictors, as manifests/base/mlflow.yaml);
- a Pushgateway (Debian's ``prometheus-pushgateway``) and a Prometheus that scrapes it and the
  predictor pods (file_sd, rewritten by the controller as pods come and go) and evaluates the
  alert rules of manifests/base/prometheusrule.yaml;
- the log sink (``python -m serving.log_sink``) writing into the prediction-log "PVC" folder;
- a webhook receiver that records every body posted to it;
- the Kubernetes API stand-in with the KServe-like controller (:mod:`tests.rehearsal.kserve_controller`),
  reached by pods through a kubeconfig file standing in for the service-account mount.

Secrets and ConfigMaps carry the names and keys manifests/ and pipelines/platform.py use; the
ConfigMap's values are the base kustomization's, with the in-cluster service addresses
replaced by the real ones here.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import yaml

from tests.components.registry.mlflow_fixtures import running_basic_auth_mlflow
from tests.conftest import fresh_database
from tests.rehearsal.kserve_controller import KServeController, Pod
from tests.serving.serving_fixtures import (
    REPO_ROOT,
    free_port,
    running_pushgateway,
    start_prometheus,
    start_server,
    stop_server,
)

NAMESPACE = "driftloop"
MANIFESTS = REPO_ROOT / "manifests"
PREDICTION_LOG_PVC = "driftloop-prediction-log"
LOG_SINK_SERVICE = "http://driftloop-log-sink/"  # spec.predictor.logger.url in manifests/base/inferenceservices.yaml
READER = ("driftloop-reader", "reader-password-1")
WRITER = ("driftloop-writer", "writer-password-1")
ALERT_FOR = "1s"  # every rule's `for:` (5m, 2h in the manifests) shortened so alerts fire within seconds
STARTUP_TIMEOUT = 600.0  # seconds for a server to come up: generous, the test machine is shared and often overloaded
EVALUATION_INTERVAL = "1s"  # Prometheus's scrape and rule evaluation interval (the manifests' Prometheus: 30s)


@dataclass
class Cluster:
    """What a pipeline run sees of the cluster (the contract the rehearsal runner codes against)."""

    root: Path
    namespace: str
    secrets: dict[str, dict[str, str]]
    config_maps: dict[str, dict[str, str]]
    volumes: dict[str, Path]
    pod_env: dict[str, str]
    mlflow_url: str
    prometheus_url: str
    pushgateway_url: str
    webhook_url: str
    kube_url: str
    controller: KServeController = field(repr=False)
    receiver: WebhookReceiver = field(repr=False)

    def overlay(self, name: str) -> dict[str, dict[str, str]]:
        """The config maps with the values a kustomize overlay (manifests/overlays/<name>) sets over the base's."""
        base, over = settings_config_map(MANIFESTS / "base"), settings_config_map(MANIFESTS / "overlays" / name)
        maps = copy.deepcopy(self.config_maps)
        maps["driftloop-settings"].update({k: v for k, v in over.items() if base.get(k) != v})
        return maps

    def webhooks(self) -> list[dict]:
        """Webhook bodies received so far (JSON, or {"text": raw} when not JSON)."""
        return list(self.receiver.bodies)

    def alerts(self) -> dict[str, str]:
        """Alert name -> state ("pending"/"firing") from Prometheus's /api/v1/alerts."""
        body = httpx.get(f"{self.prometheus_url}/api/v1/alerts", timeout=10).json()
        out: dict[str, str] = {}
        for a in body["data"]["alerts"]:
            name = a["labels"]["alertname"]
            if out.get(name) != "firing":
                out[name] = a["state"]
        return out

    def isvc(self, name: str) -> dict:
        """The InferenceService object as the API server holds it."""
        with self.controller.lock:
            return copy.deepcopy(self.controller.objects[(self.namespace, name)])

    def traffic_history(self, name: str) -> list[int | None]:
        """spec.predictor.canaryTrafficPercent after each accepted write that created or changed the spec."""
        return list(self.controller.history.get(name, []))

    def api_client(self) -> Any:
        """A kubernetes ApiClient for the stand-in API (the way the harness itself talks to it)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=self.pod_env["KUBECONFIG"])

    def serve(self, policy: str, champion_version: str, timeout: float = 600.0) -> str:
        """Create the InferenceService ``policy`` (from manifests/base/inferenceservices.yaml) serving
        ``models:/<model>/<champion_version>``, wait until it is Ready; returns its name."""
        from kubernetes import client

        obj = inference_service(policy, champion_version, self.namespace)
        client.CustomObjectsApi(self.api_client()).create_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", self.namespace, "inferenceservices", obj)
        name = obj["metadata"]["name"]
        self.controller.wait_settled(name, timeout=timeout, namespace=self.namespace)
        return str(name)

    def traffic(self, policy: str, isvc: str, frame: pd.DataFrame, **options: Any) -> contextlib.AbstractContextManager[Any]:
        """Users send ``frame``'s rows to the InferenceService while inside; the business system
        writes their labels to the label store after the (scaled) label delay; see :mod:`tests.rehearsal.traffic`."""
        from tests.rehearsal.traffic import business_traffic

        return business_traffic(self, policy, isvc, frame, **options)

    def restart_pod(self, isvc: str, revision: str | None = None) -> Pod:
        """Kill -9 a predictor container and let the "kubelet" restart it (counters start at zero)."""
        return self.controller.restart_pod(isvc, revision, self.namespace)

    def env(self) -> dict[str, str]:
        """Every ConfigMap key and Secret value a fully wired step sees (for harness code acting as a step)."""
        from pipelines import platform

        env = dict(self.config_maps["driftloop-settings"])
        env.update({v: self.secrets[platform.FEAST_SECRET][k] for k, v in platform._FEAST_ENV.items()})
        env.update({v: self.secrets[platform.MLFLOW_SECRET][k] for k, v in platform._MLFLOW_ENV.items() if k in self.secrets[platform.MLFLOW_SECRET]})
        env["MLFLOW_TRACKING_URI"] = env["DRIFTLOOP_MLFLOW_TRACKING_URI"]
        env["DRIFTLOOP_LEDGER_URL"] = self.secrets[platform.LEDGER_SECRET]["url"]
        env["DRIFTLOOP_WEBHOOK_URL"] = self.secrets[platform.WEBHOOK_SECRET]["url"]
        return env


class WebhookReceiver:
    """An HTTP server recording every POSTed body (a Slack-compatible incoming webhook)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"text": raw.decode(errors="replace")}
                receiver.bodies.append(body if isinstance(body, dict) else {"body": body})
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/driftloop"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="webhook-receiver")

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def settings_config_map(path: Path) -> dict[str, str]:
    """driftloop-settings as ``kubectl kustomize <path>`` builds it."""
    from tests.manifests.manifest_checks import build

    return next(dict(o["data"]) for o in build(path) if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "driftloop-settings")


def inference_service(policy: str, version: str, namespace: str) -> dict:
    """The manifests' InferenceService for ``policy``, pinned to one registry version.

    The transformer (Feast online features by entity id) is left out: the rehearsal's users
    send whole feature rows, so requests go straight to the predictor.
    """
    from serving.canary.k8s import container_args_patch

    docs = [d for d in yaml.safe_load_all((MANIFESTS / "base" / "inferenceservices.yaml").read_text()) if d]
    obj = copy.deepcopy(next(d for d in docs if d["metadata"]["name"] == policy))
    obj["metadata"]["namespace"] = namespace
    obj["spec"].pop("transformer", None)
    pred = obj["spec"]["predictor"]
    model = next(a for a in pred["containers"][0]["args"] if a.startswith("models:/")).split("/")[1].split("@")[0]
    pred["containers"] = container_args_patch(pred["containers"], f"models:/{model}/{version}")
    return obj


def alert_rules(out: Path) -> Path:
    """manifests/base/prometheusrule.yaml's groups as a Prometheus rules file, every `for:` shortened to ALERT_FOR."""
    rule = yaml.safe_load((MANIFESTS / "base" / "prometheusrule.yaml").read_text())
    groups = copy.deepcopy(rule["spec"]["groups"])
    for group in groups:
        for r in group["rules"]:
            if "for" in r:
                r["for"] = ALERT_FOR
    out.write_text(yaml.safe_dump({"groups": groups}))
    return out


def kubeconfig(path: Path, server: str, namespace: str) -> Path:
    """A kubeconfig for the API stand-in (what a pod's service-account mount gives the in-cluster client)."""
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "rehearsal",
              "clusters": [{"name": "rehearsal", "cluster": {"server": server}}],
              "users": [{"name": "driftloop-pipeline", "user": {"token": "rehearsal-service-account-token"}}],
              "contexts": [{"name": "rehearsal", "context": {"cluster": "rehearsal", "user": "driftloop-pipeline", "namespace": namespace}}]}
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def redis_database() -> Iterator[str]:
    """An empty Redis database index of our own (1-15) on 127.0.0.1:6379, flushed afterwards."""
    import redis

    from tests.conftest import port_open

    if not port_open("127.0.0.1", 6379):
        raise RuntimeError("Redis is not running on 127.0.0.1:6379 (start it: redis-server --daemonize yes)")
    indexes = list(range(1, 16))
    random.shuffle(indexes)
    for db in indexes:
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        if client.dbsize() == 0:
            client.set("driftloop:rehearsal:claimed", "1")
            try:
                yield f"redis://127.0.0.1:6379/{db}"
            finally:
                client.flushdb()
                client.close()
            return
    raise RuntimeError("no empty Redis database index among 1-15")


@contextmanager
def log_sink(log_dir: Path, logs: Path) -> Iterator[str]:
    """The log sink Deployment: ``python -m serving.log_sink`` writing into the prediction-log volume."""
    port = free_port()
    proc = start_server([sys.executable, "-m", "serving.log_sink", "--http-port", str(port), "--log-dir", str(log_dir), "--host", "127.0.0.1"],
                        logs / "log-sink.log")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/healthz", proc, "the log sink")
        yield url
    finally:
        stop_server(proc)


def _wait_http(url: str, proc: Any, what: str, timeout: float = STARTUP_TIMEOUT) -> None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up at {url}")
        time.sleep(0.1)


@contextmanager
def running_cluster(root: Path) -> Iterator[Cluster]:
    """Start every service fresh (own databases) under ``root``; stop them all on exit."""
    root = Path(root)
    logs = root / "logs"
    for d in (logs, root / "prometheus", root / "pods"):
        d.mkdir(parents=True, exist_ok=True)
    volumes = {PREDICTION_LOG_PVC: root / "volumes" / PREDICTION_LOG_PVC}
    volumes[PREDICTION_LOG_PVC].mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        feast_registry = stack.enter_context(fresh_database("dl_feast_registry"))
        feast_offline = stack.enter_context(fresh_database("dl_feast_offline"))
        ledger = stack.enter_context(fresh_database("dl_ledger"))
        redis_url = stack.enter_context(redis_database())
        mlflow = stack.enter_context(running_basic_auth_mlflow(root / "mlflow", READER, WRITER, timeout=STARTUP_TIMEOUT))
        pushgateway = stack.enter_context(running_pushgateway())
        receiver = stack.enter_context(WebhookReceiver())
        sink_url = stack.enter_context(log_sink(volumes[PREDICTION_LOG_PVC], logs))
        targets = root / "prometheus" / "pods.json"
        targets.write_text("[]")
        prom, prometheus_url = start_prometheus(root / "prometheus", [], file_sd=targets, rule_files=[alert_rules(root / "prometheus" / "rules.yml")],
                                                honor_targets=[pushgateway], interval=EVALUATION_INTERVAL)
        stack.callback(stop_server, prom)
        _wait_http(f"{prometheus_url}/-/ready", prom, "Prometheus")

        settings = settings_config_map(MANIFESTS / "base")
        settings.update({
            "DRIFTLOOP_MLFLOW_TRACKING_URI": mlflow.url,
            "DRIFTLOOP_PROMETHEUS_URL": prometheus_url,
            "DRIFTLOOP_PUSHGATEWAY_URL": pushgateway,
            "DRIFTLOOP_WORKDIR": "driftloop",  # relative: inside each pod's own working directory (its emptyDir)
        })
        config_maps = {"driftloop-settings": settings}
        secrets = {
            "driftloop-mlflow": {"username": WRITER[0], "password": WRITER[1], "reader_username": READER[0], "reader_password": READER[1]},
            "driftloop-feast": {"registry_url": "postgresql+psycopg2://" + feast_registry.removeprefix("postgresql://"),
                                "redis_url": redis_url, "offline_url": feast_offline},
            "driftloop-ledger": {"url": ledger},
            "driftloop-webhook": {"url": receiver.url},
        }
        kube_port = free_port()
        pod_env = {"KUBECONFIG": str(root / "kubeconfig"), "PYTHONPATH": str(REPO_ROOT)}
        controller = KServeController(root, config_maps=config_maps, secrets=secrets, services={LOG_SINK_SERVICE: sink_url},
                                      pod_env=pod_env, targets_file=targets)
        kube_url = controller.serve_within(stack, kube_port)
        kubeconfig(root / "kubeconfig", kube_url, NAMESPACE)
        yield Cluster(root=root, namespace=NAMESPACE, secrets=secrets, config_maps=config_maps, volumes=volumes, pod_env=pod_env,
                      mlflow_url=mlflow.url, prometheus_url=prometheus_url, pushgateway_url=pushgateway, webhook_url=receiver.url,
                      kube_url=kube_url, controller=controller, receiver=receiver)

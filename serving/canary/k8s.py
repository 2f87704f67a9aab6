"""Kubernetes traffic backend: patch a KServe InferenceService's canary split.

KServe runs the canary itself: changing ``spec.predictor.model.storageUri`` creates a new
revision, and ``spec.predictor.canaryTrafficPercent`` sends that share of traffic to it
(the rest stays on the previously rolled-out revision). Removing the field promotes the
new revision to 100%; setting it to 0 rolls back. This backend only writes those two
fields (JSON merge patches through ``kubernetes.client.CustomObjectsApi``) and reads
readiness and the split from ``status``; metrics come from Prometheus.

>>> canary_patch(25)
{'spec': {'predictor': {'canaryTrafficPercent': 25}}}
>>> canary_patch(None, storage_uri="s3://models/churn/7")
{'spec': {'predictor': {'canaryTrafficPercent': None, 'model': {'storageUri': 's3://models/churn/7'}}}}
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from components.errors import ConfigError, ServiceUnavailable
from serving.canary.backends import check_percent
from serving.canary.state import ANNOTATION, RolloutRecord, conflict

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"


def canary_patch(percent: int | None, storage_uri: str | None = None) -> dict[str, Any]:
    """The merge patch for a canary share (``None`` removes the field: full rollout)."""
    predictor: dict[str, Any] = {"canaryTrafficPercent": percent}
    if storage_uri is not None:
        predictor["model"] = {"storageUri": storage_uri}
    return {"spec": {"predictor": predictor}}


def container_args_patch(containers: list[dict[str, Any]], model_uri: str) -> list[dict[str, Any]] | None:
    """The containers with ``--model-uri`` set to ``model_uri``; None if none takes that flag.

    >>> container_args_patch([{"name": "kserve-container", "args": ["--model-uri", "models:/churn@champion"]}], "models:/churn/7")
    [{'name': 'kserve-container', 'args': ['--model-uri', 'models:/churn/7']}]
    """
    import copy

    out = copy.deepcopy(containers)
    found = False
    for c in out:
        args = c.get("args") or []
        for i, arg in enumerate(args):
            if arg == "--model-uri" and i + 1 < len(args):
                args[i + 1] = model_uri
                found = True
            elif arg.startswith("--model-uri="):
                args[i] = f"--model-uri={model_uri}"
                found = True
    return out if found else None


def mlflow_storage_uri(model_uri: str, tracking_uri: str | None = None) -> str:
    """Where a registry version's files live (what KServe's storage initializer downloads)."""
    from mlflow import MlflowClient

    from components.model_uri import parse_model_uri
    from serving.model_loading import resolve_version

    name, _, _ = parse_model_uri(model_uri)
    version = resolve_version(model_uri, tracking_uri)
    return str(MlflowClient(tracking_uri=tracking_uri).get_model_version_download_uri(name, version))


class KubernetesBackend:
    """Drive one InferenceService's canary through the Kubernetes API.

    ``api_client`` is a ``kubernetes.client.ApiClient`` (default: kubeconfig or in-cluster
    config). ``storage_uri_for`` maps ``models:/<name>/<version>`` to a storage URI.
    """

    def __init__(
        self,
        name: str,
        namespace: str = "default",
        api_client: Any = None,
        storage_uri_for: Callable[[str], str] | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        from kubernetes import client, config

        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                try:  # KUBECONFIG read now: the client library reads it once, when first imported
                    config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)
                except (config.ConfigException, FileNotFoundError) as exc:
                    raise ConfigError(f"no Kubernetes configuration: {exc}", fix="set KUBECONFIG or run in a pod") from None
            api_client = client.ApiClient()
        self.api = client.CustomObjectsApi(api_client)
        self.name, self.namespace = name, namespace
        self.storage_uri_for = storage_uri_for or mlflow_storage_uri
        self.poll_seconds = poll_seconds
        self._deployed = False

    def _call(self, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return dict(fn(GROUP, VERSION, self.namespace, PLURAL, self.name, *args))
        except ApiException as exc:
            where = f"InferenceService {self.namespace}/{self.name}"
            if exc.status == 404:
                raise ConfigError(f"{where} not found", fix="apply the manifests (kubectl apply -k manifests/...) or fix the name/namespace") from None
            if exc.status == 409:
                raise conflict(str((args[0].get("metadata") or {}).get("resourceVersion") if args else "?"), "newer") from None
            if exc.status in (400, 422):
                raise ConfigError(f"{where} rejected the patch: {exc.body}", fix="check the patch against the InferenceService CRD") from None
            raise ServiceUnavailable(f"Kubernetes API error {exc.status} on {where}: {exc.reason}", fix="check the API server and RBAC") from None
        except HTTPError as exc:
            raise ServiceUnavailable(f"Kubernetes API unreachable: {exc}", fix="check KUBECONFIG and the API server") from None

    def get(self) -> dict[str, Any]:
        """The InferenceService object."""
        return self._call(self.api.get_namespaced_custom_object)

    def _patch(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(self.api.patch_namespaced_custom_object, body)

    def deploy_challenger(self, model_uri: str) -> None:
        """New revision serving the challenger, with 0% of the traffic.

        A model-spec predictor gets the version's storage URI; a custom-container predictor
        running ``serving.predictor`` gets its ``--model-uri`` argument replaced (merge
        patches replace lists whole, so the containers are sent back complete).
        """
        predictor = self.get()["spec"]["predictor"]
        containers = container_args_patch(predictor.get("containers") or [], model_uri)
        if containers is not None and containers == predictor.get("containers"):
            self._deployed = True  # already the latest revision (a resumed rollout): keep its split
            return
        if containers is not None:
            self._patch({"spec": {"predictor": {"canaryTrafficPercent": 0, "containers": containers}}})
        else:
            storage_uri = self.storage_uri_for(model_uri)
            if (predictor.get("model") or {}).get("storageUri") != storage_uri:
                self._patch(canary_patch(0, storage_uri=storage_uri))
        self._deployed = True

    def read_state(self) -> tuple[RolloutRecord | None, str]:
        """The rollout record in the annotation, and the resourceVersion it was read at."""
        meta = self.get().get("metadata") or {}
        text = (meta.get("annotations") or {}).get(ANNOTATION)
        return (RolloutRecord.from_json(text) if text else None), str(meta.get("resourceVersion", ""))

    def write_state(self, record: RolloutRecord, token: str) -> str:
        """Write the record if the object is still at resourceVersion ``token`` (the API answers 409 otherwise).

        Our own traffic patches also bump the resourceVersion, so on a 409 the record is
        read again: if it is still ours (same holder) the write is retried at the new version.
        """
        from serving.canary.state import RolloutConflict

        for _ in range(5):
            try:
                obj = self._patch({"metadata": {"resourceVersion": token, "annotations": {ANNOTATION: record.to_json()}}})
                return str((obj.get("metadata") or {}).get("resourceVersion", ""))
            except RolloutConflict:
                current, token = self.read_state()
                if current is not None and current.active and current.holder != record.holder:
                    raise  # another controller holds the service
        raise conflict(token, "changing")

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Until the latest revision is ready and the Ready condition is True."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.get().get("status") or {}
            predictor = (status.get("components") or {}).get("predictor") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
            if ready and predictor.get("latestReadyRevision") == predictor.get("latestCreatedRevision"):
                return
            if time.monotonic() >= deadline:
                raise ServiceUnavailable(f"InferenceService {self.namespace}/{self.name} not ready after {timeout:.0f}s",
                                         fix="kubectl describe inferenceservice " + self.name)
            time.sleep(self.poll_seconds)

    def set_traffic(self, percent: int) -> None:
        self._patch(canary_patch(check_percent(percent)))

    def current_traffic(self) -> int:
        """The latest revision's share from ``status`` (0 when no challenger is deployed)."""
        obj = self.get()
        predictor = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
        traffic = predictor.get("traffic") or []
        if len(traffic) > 1:
            return int(next((t.get("percent", 0) for t in traffic if t.get("latestRevision")), 0))
        spec_percent = obj["spec"]["predictor"].get("canaryTrafficPercent")
        if spec_percent is not None:
            return int(spec_percent)
        return 100 if self._deployed else 0

    def promote(self) -> None:
        """Remove canaryTrafficPercent: KServe rolls the latest revision out to 100%."""
        self._patch(canary_patch(None))
        self._deployed = False

    def rollback(self) -> None:
        """canaryTrafficPercent 0: all traffic back to the previously rolled-out revision."""
        self._patch(canary_patch(0))
        self._deployed = False

    def metrics_targets(self) -> list[str]:
        return []  # pods are scraped by Prometheus; use PrometheusSource

"""A Kubernetes API stand-in for one resource type: create (POST), GET and merge-PATCH of KServe
InferenceServices over real HTTP, validating every written object against the CRD's
OpenAPI schema and imitating the KServe controller's canary status.

A new revision starts whenever the predictor's pod template changes (anything under
``spec.predictor`` but ``canaryTrafficPercent``), as with Knative. ``history`` keeps
``spec.predictor.canaryTrafficPercent`` after each accepted write that created or changed the
spec (metadata-only writes such as the rollout record's annotation are left out), per object name.
Subclasses act on objects through :meth:`KServeStandIn.on_change` (called under the lock
after each accepted write), e.g. tests/rehearsal/kserve_controller.py starts processes.

Like the API server it keeps ``metadata.resourceVersion`` (bumped on every write) and
answers 409 Conflict to a patch that names an older one (optimistic concurrency).
``fail_patches`` injects faults: a list of predicates on the patch body; the first
matching one is used up and its PATCH answered 503 with a plain-text body."""

from __future__ import annotations

import copy
import functools
import threading
import time
from pathlib import Path
from typing import Any

import yaml

CRD = Path("/work/shared/schemas/serving.kserve.io_inferenceservices.yaml")
COLLECTION = "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices"
PATH = COLLECTION + "/{name}"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def isvc(name: str, namespace: str, storage_uri: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace, "generation": 1, "resourceVersion": "1"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "mlflow"}, "protocolVersion": "v2", "storageUri": storage_uri}}},
    }


@functools.cache
def crd_validator() -> Any:
    """The InferenceService CRD's OpenAPI schema as a validator (parsed once: the file is large)."""
    import jsonschema

    try:
        loader: Any = yaml.CSafeLoader
    except AttributeError:
        loader = yaml.SafeLoader
    crd = yaml.load(CRD.read_text(), Loader=loader)
    return jsonschema.Draft7Validator(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


class KServeStandIn:
    def __init__(self, objects: list[dict], not_ready_polls: int = 0) -> None:
        self.validator = crd_validator()
        self.objects = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
        self.revisions: dict[tuple[str, str], int] = {}
        self.patches: list[tuple[str, dict]] = []  # (content type, body)
        self.not_ready_polls = not_ready_polls
        self._pending = 0
        self.fail_patches: list[Any] = []  # predicates on a patch body: a match is answered 503 once
        self.failed: list[dict] = []  # the patches answered 503
        self.lock = threading.RLock()
        self.history: dict[str, list[int | None]] = {}
        self.url = ""  # set by serve()
        for key in self.objects:
            self._reconcile(key, new_revision=True)

    def on_change(self, key: tuple[str, str], new_revision: bool) -> None:
        """Hook after an accepted create or patch (lock held): nothing here; a controller acts."""

    @staticmethod
    def pod_template(obj: dict) -> dict:
        """What makes a revision: the predictor spec without the traffic split."""
        return {k: v for k, v in obj["spec"]["predictor"].items() if k != "canaryTrafficPercent"}

    def _accepted(self, key: tuple[str, str], new_revision: bool, spec_changed: bool = True) -> None:
        self._reconcile(key, new_revision=new_revision)
        if spec_changed:
            self.history.setdefault(key[1], []).append(self.objects[key]["spec"]["predictor"].get("canaryTrafficPercent"))
        self.on_change(key, new_revision)

    def invalid(self, obj: dict) -> Any:
        """A 422 response if ``obj`` (without status) breaks the CRD schema, else None."""
        from starlette.responses import JSONResponse

        errors = sorted(self.validator.iter_errors({k: v for k, v in obj.items() if k != "status"}), key=str)
        if not errors:
            return None
        msg = "; ".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:3])
        return JSONResponse({"kind": "Status", "code": 422, "reason": "Invalid", "message": msg}, status_code=422)

    def _reconcile(self, key: tuple[str, str], new_revision: bool) -> None:
        obj = self.objects[key]
        name = key[1]
        status = obj.setdefault("status", {})
        pred = status.setdefault("components", {}).setdefault("predictor", {})
        if new_revision:
            n = self.revisions[key] = self.revisions.get(key, 0) + 1
            if pred.get("latestCreatedRevision"):
                pred["previousRolledoutRevision"] = pred.get("latestRolledoutRevision")
            pred["latestCreatedRevision"] = f"{name}-predictor-{n:05d}"
        latest, prev = pred["latestCreatedRevision"], pred.get("previousRolledoutRevision")
        canary = obj["spec"]["predictor"].get("canaryTrafficPercent")
        if prev is None or canary is None or canary == 100:
            pred["traffic"] = [{"revisionName": latest, "percent": 100, "latestRevision": True, "tag": "latest"}]
            pred["latestRolledoutRevision"] = latest
        else:
            pred["traffic"] = [{"revisionName": latest, "percent": canary, "latestRevision": True, "tag": "latest"},
                               {"revisionName": prev, "percent": 100 - canary, "latestRevision": False, "tag": "prev"}]
        pred["latestReadyRevision"] = pred["latestCreatedRevision"]
        self._pending = self.not_ready_polls
        status["conditions"] = [{"type": "Ready", "status": "True"}]

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        def status_404(ns: str, name: str) -> JSONResponse:
            return JSONResponse({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                                 "message": f'inferenceservices.serving.kserve.io "{name}" not found'}, status_code=404)

        async def handle(request: Request) -> JSONResponse:
            key = (request.path_params["ns"], request.path_params["name"])
            if key not in self.objects:
                return status_404(*key)
            obj = self.objects[key]
            if request.method == "GET":
                view = copy.deepcopy(obj)
                if self._pending > 0:  # the new revision is still starting
                    self._pending -= 1
                    view["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
                    view["status"]["components"]["predictor"]["latestReadyRevision"] = None
                return JSONResponse(view)
            ctype = request.headers.get("content-type", "")
            if ctype != "application/merge-patch+json":
                return JSONResponse({"kind": "Status", "code": 415, "message": f"unsupported patch type {ctype}"}, status_code=415)
            body = await request.json()
            with self.lock:
                return self._patch(key, ctype, body)

        async def create(request: Request) -> JSONResponse:
            ns = request.path_params["ns"]
            body = await request.json()
            meta = body.get("metadata") or {}
            key = (ns, str(meta.get("name", "")))
            with self.lock:
                if key in self.objects:
                    return JSONResponse({"kind": "Status", "code": 409, "reason": "AlreadyExists",
                                         "message": f'inferenceservices.serving.kserve.io "{key[1]}" already exists'}, status_code=409)
                obj = {**body, "metadata": {**meta, "namespace": ns, "generation": 1, "resourceVersion": "1"}}
                obj.pop("status", None)
                refused = self.invalid(obj)
                if refused is not None:
                    return refused
                self.objects[key] = obj
                self._accepted(key, new_revision=True)
                return JSONResponse(copy.deepcopy(self.objects[key]), status_code=201)

        return Starlette(routes=[Route(COLLECTION, create, methods=["POST"]), Route(PATH, handle, methods=["GET", "PATCH"])])

    def _patch(self, key: tuple[str, str], ctype: str, body: dict) -> Any:
        from starlette.responses import JSONResponse, PlainTextResponse

        obj = self.objects[key]
        for i, matches in enumerate(self.fail_patches):
            if matches(body):
                del self.fail_patches[i]
                self.failed.append(body)
                return PlainTextResponse("upstream connect error or disconnect/reset before headers", status_code=503)
        self.patches.append((ctype, body))
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != obj["metadata"]["resourceVersion"]:
            return JSONResponse({"kind": "Status", "code": 409, "reason": "Conflict",
                                 "message": "the object has been modified; please apply your changes to the latest version and try again"},
                                status_code=409)
        merged = merge_patch(obj, body)
        refused = self.invalid(merged)
        if refused is not None:
            return refused
        if merged["spec"] != obj["spec"]:
            merged["metadata"]["generation"] = obj["metadata"]["generation"] + 1
        merged["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        self.objects[key] = merged
        self._accepted(key, new_revision=self.pod_template(merged) != self.pod_template(obj), spec_changed=merged["spec"] != obj["spec"])
        return JSONResponse(copy.deepcopy(self.objects[key]))

    def serve(self, port: int = 0) -> Any:
        """Serve the API on 127.0.0.1:``port`` (0: any free port, see :attr:`url`); returns (uvicorn server, thread).

        The socket is bound here, before the server thread starts: a port taken meanwhile by
        another process fails at once with OSError instead of leaving a server that never
        started (the ``free_port()``-then-bind race of busy shared machines).
        """
        import socket

        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            raise
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(self.app(), log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not server.started:
            raise RuntimeError(f"the API stand-in did not start on {self.url}")
        return server, thread

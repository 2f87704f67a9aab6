"""A stand-in for the Kubeflow Pipelines v2beta1 REST API, just the endpoints kfp.Client calls.

It keeps pipelines, versions, experiments, runs and recurring runs in memory and records
every request (method, path, query, headers, body) so tests check what the real client
sent: multipart upload bodies, JSON run specs with the cron and parameters.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

API = "/apis/v2beta1"
NOW = "2026-11-28T20:00:00Z"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def upload(self) -> tuple[str, bytes]:
        """The multipart ``uploadfile`` part: (filename, content)."""
        msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + self.body)
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") == "uploadfile":
                return part.get_filename() or "", part.get_payload(decode=True)
        raise AssertionError("no uploadfile part in the multipart body")


@dataclass
class KfpState:
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    packages: dict[str, bytes] = field(default_factory=dict)  # version id -> uploaded YAML
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    recurring_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == API + path]


def _matches(item: dict[str, Any], filter_text: str | None) -> bool:
    if not filter_text:
        return True
    for pred in json.loads(filter_text).get("predicates", []):
        key = pred["key"].replace("name", "display_name") if pred["key"] == "name" else pred["key"]
        if item.get(key) != pred.get("stringValue", pred.get("string_value")):
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    state: KfpState

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _record(self) -> Recorded:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        rec = Recorded(self.command, url.path, parse_qs(url.query), dict(self.headers.items()), self.rfile.read(length))
        self.state.requests.append(rec)
        return rec

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _q(self, rec: Recorded, key: str) -> str | None:
        return rec.query.get(key, [None])[0]

    def do_GET(self) -> None:  # noqa: N802
        rec = self._record()
        s, p = self.state, rec.path.removeprefix(API)
        if p == "/healthz":
            return self._send(200, {"multi_user": False})
        if p == "/pipelines":
            items = [x for x in s.pipelines.values() if _matches(x, self._q(rec, "filter"))]
            return self._send(200, {"pipelines": items, "total_size": len(items)} if items else {})
        if p.startswith("/pipelines/") and p.endswith("/versions"):
            versions = s.versions.get(p.split("/")[2], [])
            return self._send(200, {"pipeline_versions": versions, "total_size": len(versions)} if versions else {})
        if p == "/experiments":
            items = [x for x in s.experiments.values() if _matches(x, self._q(rec, "filter"))]
            return self._send(200, {"experiments": items, "total_size": len(items)} if items else {})
        if p == "/recurringruns":
            exp = self._q(rec, "experiment_id")
            items = [x for x in s.recurring_runs.values() if exp in (None, x.get("experiment_id"))]
            return self._send(200, {"recurringRuns": items, "total_size": len(items)} if items else {})
        if p.startswith("/runs/") and p.split("/")[2] in s.runs:
            return self._send(200, s.runs[p.split("/")[2]])
        if p.startswith("/recurringruns/") and p.split("/")[2] in s.recurring_runs:
            return self._send(200, s.recurring_runs[p.split("/")[2]])
        return self._send(404, {"error": f"not found: {p}", "code": 5})

    def do_DELETE(self) -> None:  # noqa: N802
        rec = self._record()
        s, p = self.state, rec.path.removeprefix(API)
        if p.startswith("/recurringruns/") and s.recurring_runs.pop(p.split("/")[2], None) is not None:
            return self._send(200, {})
        return self._send(404, {"error": f"not found: {p}", "code": 5})

    def do_POST(self) -> None:  # noqa: N802
        rec = self._record()
        s, p = self.state, rec.path.removeprefix(API)
        if p in ("/pipelines/upload", "/pipelines/upload_version"):
            filename, content = rec.upload()
            if not content.strip():
                return self._send(400, {"error": "empty pipeline package", "code": 3})
            if p == "/pipelines/upload":
                name = self._q(rec, "name") or filename
                if any(x["display_name"] == name for x in s.pipelines.values()):
                    return self._send(409, {"error": f"pipeline {name} exists", "code": 6})
                pid = str(uuid.uuid4())
                s.pipelines[pid] = {"pipeline_id": pid, "display_name": name, "description": self._q(rec, "description") or "", "created_at": NOW}
                version_name = name
            else:
                pid = self._q(rec, "pipelineid") or ""
                if pid not in s.pipelines:
                    return self._send(404, {"error": f"no pipeline {pid}", "code": 5})
                version_name = self._q(rec, "name") or filename
            vid = str(uuid.uuid4())
            version = {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": version_name, "created_at": NOW}
            s.versions.setdefault(pid, []).append(version)
            s.packages[vid] = content
            return self._send(200, s.pipelines[pid] if p == "/pipelines/upload" else version)
        if p == "/experiments":
            body = rec.json()
            eid = str(uuid.uuid4())
            s.experiments[eid] = {**body, "experiment_id": eid, "created_at": NOW, "storage_state": "AVAILABLE"}
            return self._send(200, s.experiments[eid])
        if p == "/runs":
            body = rec.json()
            rid = str(uuid.uuid4())
            s.runs[rid] = {**body, "run_id": rid, "state": "PENDING", "created_at": NOW}
            return self._send(200, s.runs[rid])
        if p == "/recurringruns":
            body = rec.json()
            rid = str(uuid.uuid4())
            s.recurring_runs[rid] = {**body, "recurring_run_id": rid, "status": "ENABLED", "created_at": NOW}
            return self._send(200, s.recurring_runs[rid])
        return self._send(404, {"error": f"not found: {p}", "code": 5})


class KfpStandIn:
    """Serve the stand-in on ``127.0.0.1:port`` in a thread; use as a context manager."""

    def __init__(self, port: int) -> None:
        self.state = KfpState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> KfpStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

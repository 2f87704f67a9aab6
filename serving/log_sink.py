"""Sink for KServe's inference logger: writes request and response CloudEvents into the
prediction log, where :func:`serving.prediction_log.read_log` pairs them.

On a cluster each predictor pod's disk is its own, so the InferenceService's
``spec.predictor.logger`` (mode ``all``) posts every request and response as a binary-mode
CloudEvent here: ``ce-id`` is the event id that pairs the two halves, ``ce-type`` ends in
``.request`` or ``.response``, ``ce-inferenceservicename`` names the model.

Request ids: a row's ``request_id`` is the id the predictor made and returned (the response
body's ``id``), never an id a client chose; ``ce-id`` only pairs the halves (KServe's agent
makes it unless the request carried a ``ce-id`` header, so an event id that turns up with two
different requests or responses is left out rather than guessed). The client's own
``x-request-id`` arrives, when the logger lists it in ``metadataHeaders``, in the ``ce-metadata``
extension and is kept, length-limited, as ``client_request_id``.

Pairing works across sink replicas because the sink keeps no pairing state: each half is
appended at once, as its own record, to the shared log folder (one file per replica and hour
on the RWX volume, so replicas never interleave bytes on NFS), and ``read_log`` pairs the
halves by id (one row per instance: request id, model version from the response, the
instance's fields, the prediction), the same rows the predictor logs locally. The two halves
of one exchange may reach different pods, arrive in either order, or one may be resent;
a sink crash loses at most the last flush interval, not a store of unmatched halves.

Bounds, so a flood cannot exhaust the pod: one :class:`PredictionLogger` (one flusher thread)
per model, at most ``max_models`` models; a body over ``max_body_bytes`` gets 413; while the
bytes accepted but not yet written exceed ``max_pending_bytes`` (the disk is failing) a new
event gets 503 and the sender keeps it. A malformed body gets 400 and is not stored; the other
half, already written, waits in the log for a valid resend. ``/healthz`` answers 503 while a
logger's last write failed (a readiness probe); ``/livez`` stays 200 (a liveness probe must not
restart the pod and drop the records it holds for retry).

``python -m serving.log_sink --http-port 8080 --log-dir /var/lib/driftloop/prediction-log``

>>> import tempfile
>>> from serving.prediction_log import read_log
>>> d = tempfile.mkdtemp()
>>> a, b = LogSink(d), LogSink(d)  # two replicas on one shared folder
>>> h = {"ce-id": "e1", "ce-inferenceservicename": "churn", "ce-metadata": '{"X-Request-Id": ["mine"]}'}
>>> a.receive({**h, "ce-type": "org.kubeflow.serving.inference.request"}, b'{"instances": [{"x": 1.0}]}')
(202, {'stored': 'request'})
>>> b.receive({**h, "ce-type": "org.kubeflow.serving.inference.response"}, b'{"predictions": [0.7], "model_version": "4", "id": "s1"}')
(202, {'stored': 'response'})
>>> a.close(); b.close()
>>> read_log(d, "churn")[["request_id", "client_request_id", "model_version", "x", "prediction"]].to_dict("records")
[{'request_id': 's1', 'client_request_id': 'mine', 'model_version': '4', 'x': 1.0, 'prediction': 0.7}]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.errors import DataError
from serving.prediction_log import (
    PredictionLogger,
    check_model_name,
    client_request_id,
    pair_records,
)

__all__ = ["LogSink", "create_app", "main", "pair_records"]

MAX_BODY_BYTES = 4 * 1024 * 1024  # one event body; KServe's logger posts one request or response
MAX_PENDING_BYTES = 64 * 1024 * 1024  # accepted, not yet written (only grows while the disk fails)
MAX_MODELS = 64  # one logger and one flusher thread each


def metadata_request_id(metadata: str | None) -> str | None:
    """The client's ``x-request-id`` from KServe's ``ce-metadata`` extension (a JSON object of
    header name -> values), length-limited; None when absent or malformed.

    >>> metadata_request_id('{"X-Request-Id": ["abc"]}'), metadata_request_id("not json"), metadata_request_id(None)
    ('abc', None, None)
    """
    try:
        parsed = json.loads(metadata) if metadata else None
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    for name, values in parsed.items():
        if str(name).lower() == "x-request-id":
            value = values[0] if isinstance(values, list) and values else values
            return client_request_id(value)
    return None


def default_writer() -> str:
    """This process's file suffix: the pod name (hostname) and pid, as a safe file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{socket.gethostname()}-{os.getpid()}").lstrip("-._") or "sink"


class LogSink:
    """The sink's logic without a web framework: :meth:`receive` one event, :meth:`health`.

    ``logger_options`` go to each :class:`PredictionLogger` (e.g. ``fsync``, ``flush_interval``).
    """

    def __init__(
        self,
        log_dir: str | Path,
        default_model: str = "model",
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        max_models: int = MAX_MODELS,
        writer: str | None = None,
        **logger_options: Any,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.default_model = check_model_name(default_model)
        self.max_body_bytes = max_body_bytes
        self.max_pending_bytes = max_pending_bytes
        self.max_models = max_models
        self.writer = default_writer() if writer is None else writer
        self.logger_options = logger_options
        self.loggers: dict[str, PredictionLogger] = {}
        self._lock = threading.Lock()

    def logger(self, model: str) -> PredictionLogger:
        """The one logger of ``model``, created on first use (DataError for a bad name or
        beyond ``max_models``)."""
        check_model_name(model)
        with self._lock:
            found = self.loggers.get(model)
            if found is None:
                if len(self.loggers) >= self.max_models:
                    raise DataError(f"this sink already logs {len(self.loggers)} models", fix="raise --max-models or run a sink per model group")
                found = self.loggers[model] = PredictionLogger(self.log_dir, model, writer=self.writer, **self.logger_options)
            return found

    @property
    def pending_bytes(self) -> int:
        """Event bytes accepted and not yet written, over all models."""
        return sum(lg.pending_bytes for lg in list(self.loggers.values()))

    def receive(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON reply) for one binary-mode CloudEvent; 202 once it is queued."""
        h = {k.lower(): v for k, v in headers.items()}
        event_id, kind = h.get("ce-id"), h.get("ce-type", "")
        if not event_id or not kind.endswith((".request", ".response")):
            return 400, {"error": "expected a binary-mode CloudEvent with ce-id and ce-type *.request|*.response"}
        if len(body) > self.max_body_bytes:
            return 413, {"error": f"event body is {len(body)} bytes, over the limit of {self.max_body_bytes}",
                         "fix": "raise --max-body-bytes or send fewer instances per request"}
        try:
            parsed = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return 400, {"error": f"the {kind.rsplit('.', 1)[-1]} body of {event_id!r} is not JSON; the other half stays in the log"}
        half = "request" if kind.endswith(".request") else "response"
        key = "instances" if half == "request" else "predictions"
        v2 = "inputs" if half == "request" else "outputs"
        if not isinstance(parsed, dict) or not (isinstance(parsed.get(key), list) or isinstance(parsed.get(v2), list)):
            return 400, {"error": f"the {half} body of {event_id!r} has no {key!r} or {v2!r} list; the other half stays in the log"}
        model = h.get("ce-inferenceservicename") or self.default_model
        try:
            logger = self.logger(model)
        except DataError as exc:
            return 400, {"error": exc.problem, "fix": exc.fix}
        if self.pending_bytes + len(body) > self.max_pending_bytes:
            return 503, {"error": f"{self.pending_bytes} bytes are waiting for the disk", "last_error": logger.last_error}
        logger.log_event(event_id, half, parsed, size=len(body), client_request_id=metadata_request_id(h.get("ce-metadata")))
        return 202, {"stored": half}

    def health(self) -> tuple[int, dict[str, Any]]:
        """200 while every logger's last write succeeded, else 503 with the errors."""
        loggers = list(self.loggers.items())
        errors = {m: lg.last_error for m, lg in loggers if not lg.healthy}
        body = {"ok": not errors, "pending_bytes": self.pending_bytes, "models": sorted(self.loggers),
                "dropped": sum(lg.dropped for _, lg in loggers)}
        if errors:
            body["errors"] = errors
        return (503 if errors else 200), body

    def close(self) -> None:
        """Flush and stop every logger."""
        for lg in list(self.loggers.values()):
            lg.close()


def create_app(log_dir: str | Path, default_model: str = "model", **options: Any) -> Any:
    """The sink as a Starlette app over one :class:`LogSink` (``app.state.sink``)."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    sink = LogSink(log_dir, default_model, **options)

    async def receive(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > sink.max_body_bytes:  # refuse before reading it
            return JSONResponse({"error": f"event body is {declared} bytes, over the limit of {sink.max_body_bytes}"}, status_code=413)
        chunks, size = [], 0
        async for chunk in request.stream():  # a chunked body is measured as it arrives, not buffered whole
            size += len(chunk)
            if size > sink.max_body_bytes:
                return JSONResponse({"error": f"event body is over the limit of {sink.max_body_bytes} bytes"}, status_code=413)
            chunks.append(chunk)
        status, reply = sink.receive(request.headers, b"".join(chunks))
        return JSONResponse(reply, status_code=status)

    async def healthz(request: Request) -> JSONResponse:
        status, reply = sink.health()
        return JSONResponse(reply, status_code=status)

    async def livez(request: Request) -> JSONResponse:
        # Liveness stays 200 while writes fail: a restart would drop the records held for retry.
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        sink.close()

    app = Starlette(routes=[Route("/", receive, methods=["POST"]), Route("/healthz", healthz), Route("/livez", livez)],
                    lifespan=lifespan)
    app.state.sink = sink
    return app


def main(argv: list[str] | None = None) -> None:
    """Wire arguments and run the sink with uvicorn."""
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m serving.log_sink", description="KServe inference-logger sink writing the prediction log.")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--log-dir", required=True)
    p.add_argument("--model-name", default="model", help="used when an event has no ce-inferenceservicename")
    p.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a pod's sink must listen on its pod IP
    p.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES)
    p.add_argument("--max-pending-bytes", type=int, default=MAX_PENDING_BYTES)
    p.add_argument("--max-models", type=int, default=MAX_MODELS)
    args = p.parse_args(argv)
    defaults = {"max_body_bytes": MAX_BODY_BYTES, "max_pending_bytes": MAX_PENDING_BYTES, "max_models": MAX_MODELS}
    overrides = {k: getattr(args, k) for k, v in defaults.items() if getattr(args, k) != v}
    app = create_app(args.log_dir, args.model_name, **overrides)
    uvicorn.run(app, host=args.host, port=args.http_port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

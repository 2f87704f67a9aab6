"""Sink for KServe's inference logger: pairs request and response CloudEvents into the
prediction log.

On a cluster each predictor pod's disk is its own, so the InferenceService's
``spec.predictor.logger`` (mode ``all``) posts every request and response as a binary-mode
CloudEvent here: ``ce-id`` is the request id, ``ce-type`` ends in ``.request`` or
``.response``, ``ce-inferenceservicename`` names the model. When both halves of an id have
arrived, one record per instance is appended (request id, model version from the
response, the instance's fields, the prediction), exactly as the predictor logs locally.

``python -m serving.log_sink --http-port 8080 --log-dir /var/lib/driftloop/prediction-log``

>>> pair_records("r1", {"instances": [{"x": 1.0}, {"x": 2.0}]}, {"predictions": [0.2, 0.9], "model_version": "4"})
[('r1-0', '4', {'x': 1.0}, 0.2), ('r1-1', '4', {'x': 2.0}, 0.9)]
"""

from __future__ import annotations

import argparse
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

MAX_PENDING = 10_000  # unmatched halves kept; the oldest is dropped beyond this


def pair_records(request_id: str, request: dict[str, Any], response: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], float]]:
    """(request id, model version, instance, prediction) for each instance of a v1 or v2 exchange."""
    if "instances" in request:
        instances = list(request["instances"])
    else:  # v2: one named tensor per feature
        columns = {i["name"]: list(i["data"]) for i in request.get("inputs", [])}
        n = len(next(iter(columns.values()), []))
        instances = [{k: v[i] for k, v in columns.items()} for i in range(n)]
    if "predictions" in response:
        predictions = list(response["predictions"])
    else:
        predictions = list(response.get("outputs", [{}])[0].get("data", []))
    version = str(response.get("model_version", ""))
    one = len(instances) == 1
    return [(request_id if one else f"{request_id}-{i}", version, dict(inst), float(p))
            for i, (inst, p) in enumerate(zip(instances, predictions, strict=False))]


def create_app(log_dir: str | Path, default_model: str = "model") -> Any:
    """The sink as a Starlette app (one PredictionLogger per model)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from serving.prediction_log import PredictionLogger

    loggers: dict[str, PredictionLogger] = {}
    pending: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    async def receive(request: Request) -> JSONResponse:
        h = request.headers
        event_id, kind = h.get("ce-id"), h.get("ce-type", "")
        if not event_id or not kind.endswith((".request", ".response")):
            return JSONResponse({"error": "expected a binary-mode CloudEvent with ce-id and ce-type *.request|*.response"}, status_code=400)
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            return JSONResponse({"error": "the event body is not JSON"}, status_code=400)
        half = "request" if kind.endswith(".request") else "response"
        other = pending.pop(event_id, None)
        if other is None or other[0] == half:
            pending[event_id] = (half, body)
            while len(pending) > MAX_PENDING:
                pending.popitem(last=False)
            return JSONResponse({"stored": half}, status_code=202)
        req, resp = (body, other[1]) if half == "request" else (other[1], body)
        model = h.get("ce-inferenceservicename") or default_model
        logger = loggers.setdefault(model, PredictionLogger(log_dir, model))
        records = pair_records(event_id, req, resp)
        for rid, version, instance, prediction in records:
            logger.log(rid, version, instance, prediction)
        return JSONResponse({"logged": len(records)})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "pending": len(pending)})

    async def close() -> None:
        for logger in loggers.values():
            logger.close()

    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        await close()

    return Starlette(routes=[Route("/", receive, methods=["POST"]), Route("/healthz", healthz)], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    """Wire arguments and run the sink with uvicorn."""
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m serving.log_sink", description="KServe inference-logger sink writing the prediction log.")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--log-dir", required=True)
    p.add_argument("--model-name", default="model", help="used when an event has no ce-inferenceservicename")
    p.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a pod's sink must listen on its pod IP
    args = p.parse_args(argv)
    uvicorn.run(create_app(args.log_dir, args.model_name), host=args.host, port=args.http_port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

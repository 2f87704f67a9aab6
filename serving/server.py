"""What every KServe server process here shares: the ``kserve.Model`` base, quiet request logs,
one BLAS thread, request limits (body bytes and batch size, HTTP 413) and the bind address.

Local servers listen on 127.0.0.1 unless asked (``--host 0.0.0.0`` in a container).

>>> one_blas_thread(env={})
{'OMP_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
>>> check_batch(3, 2)
Traceback (most recent call last):
...
serving.server.RequestTooLarge: the request has 3 instances; the limit is 2 (--max-batch)
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import MutableMapping
from typing import Any

try:  # kserve is a hard dependency of serving; importing it here keeps the servers real kserve.Models.
    from kserve import Model as KServeModel
except ImportError:  # pragma: no cover
    KServeModel = object  # type: ignore[assignment,misc]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Ask for one OpenMP/BLAS thread per server unless the environment says otherwise.

    Requests are small and concurrent, and OpenMP barriers across oversubscribed cores
    made p95 latency 10-100x the median here. The variables must be set before
    scikit-learn loads libgomp (threadpoolctl only limits libraries already loaded).
    """
    env = os.environ if env is None else env
    for var in THREAD_VARIABLES:
        env.setdefault(var, "1")
    return env


def quiet_request_logs(access_log: bool = False) -> None:
    """Drop KServe's per-request trace lines and FastAPI's per-request deprecation warning:
    writing them costs more than a small model's prediction."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*ORJSONResponse is deprecated.*")
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    if not access_log:
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


HOST_ENV = "DRIFTLOOP_SERVER_HOST"  # the manifests set 0.0.0.0: a pod must be reachable on its address
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_BODY_BYTES = 1_000_000  # about 2,000 typical instances
DEFAULT_MAX_BATCH = 1000


class RequestTooLarge(Exception):
    """A request over a configured limit; answered with HTTP 413 and ``{"error": <this message>}``."""


def check_batch(instances: int, limit: int) -> None:
    """Raise :class:`RequestTooLarge` when a request carries more than ``limit`` instances."""
    if instances > limit:
        raise RequestTooLarge(f"the request has {instances} instances; the limit is {limit} (--max-batch)")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--max-body-bytes`` and ``--max-batch``, shared by every server here."""
    parser.add_argument("--host", default=os.environ.get(HOST_ENV) or DEFAULT_HOST,
                        help=f"address to listen on (default ${HOST_ENV} or {DEFAULT_HOST}; 0.0.0.0 in a container)")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="larger request bodies get HTTP 413")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="requests with more instances get HTTP 413")


def too_large_response(message: str) -> Any:
    """The 413 answer: a JSON body naming the limit."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=413)


class BodyLimit:
    """ASGI middleware: answer 413 before the app sees a body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _message(self, size: str) -> str:
        return f"the request body is {size} bytes; the limit is {self.max_bytes} (--max-body-bytes)"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_large_response(self._message(declared.decode()))(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:  # chunked bodies have no length: count while reading, stop at the limit
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await too_large_response(self._message(f"more than {self.max_bytes}"))(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def serve_models(models: list[Any], *, http_port: int, host: str = DEFAULT_HOST, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 predictor_config: Any = None) -> None:
    """Run kserve's REST server (one worker, no gRPC) on ``host:http_port`` with the body limit and 413 answers.

    ``kserve.ModelServer.start`` always binds 0.0.0.0; this is its single-worker path with
    the address set.
    """
    import asyncio

    import kserve
    from kserve.model_server import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app as fastapi_app
    from kserve.protocol.rest.server import RESTServer

    server = kserve.ModelServer(http_port=http_port, enable_grpc=False, enable_latency_logging=False, predictor_config=predictor_config)
    server._register_and_check_atleast_one_model_is_ready(models)
    fastapi_app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    fastapi_app.add_exception_handler(RequestTooLarge, lambda request, exc: too_large_response(str(exc)))
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, http_port, grace_period=server.grace_period,
                      event_loop=server.event_loop, timeout_keep_alive=server.timeout_keep_alive)
    rest.config.host = host
    server._rest_server = rest
    server.servers.append(rest.start())
    server.setup_event_loop()
    server.register_signal_handler()
    asyncio.run(server._serve())

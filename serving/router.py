"""Local stand-in for the Knative/KServe canary traffic split.

An HTTP server that forwards ``/v1`` and ``/v2`` requests to the champion or the challenger
model server. A request goes to the challenger when ``hash(request id) % 100 <
canaryTrafficPercent`` (deterministic per request id; a request without one gets a fresh
uuid4, which makes the split random). ``POST /admin/traffic {"percent": 25}`` shifts the
split and ``POST /admin/backends`` swaps the servers; both are single assignments, so a
request in flight keeps the backend it was given and no request fails during a shift. A
connection error to the chosen server is retried once on the other (as Knative's activator
would). Every response carries ``x-served-by: champion|challenger``.

``python -m serving.router --port 9000 --champion http://127.0.0.1:8081`` runs it. Bodies over
``--max-body-bytes`` and batches over ``--max-batch`` get 413 before anything is forwarded;
it listens on 127.0.0.1 unless ``--host`` says otherwise.

>>> routes_to_challenger("req-42", 0), routes_to_challenger("req-42", 100)
(False, True)
>>> sum(routes_to_challenger(f"r{i}", 25) for i in range(10000))
2549
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

FORWARD_RESPONSE_HEADERS = ("content-type", "x-model-version", "x-request-id")
HOP_BY_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}


def routes_to_challenger(request_id: str, percent: int) -> bool:
    """Whether a request id falls in the challenger's share (stable across processes)."""
    bucket = int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=8).digest(), "big") % 100
    return bucket < percent


@dataclass
class Split:
    """The current traffic split (replaced as a whole, never mutated field by field)."""

    champion: str
    challenger: str | None = None
    percent: int = 0


def batch_size(body: bytes) -> int:
    """Instances in a v1 (``instances``) or v2 (``inputs[].shape[0]``) JSON body; 0 when it is neither.

    >>> batch_size(b'{"instances": [{}, {}]}'), batch_size(b'{"inputs": [{"shape": [3]}]}'), batch_size(b"nope")
    (2, 3, 0)
    """
    import json

    try:
        payload = json.loads(body)
    except ValueError:
        return 0
    if not isinstance(payload, dict):
        return 0
    if isinstance(payload.get("instances"), list):
        return len(payload["instances"])
    inputs = payload.get("inputs")
    if isinstance(inputs, list):
        return max((int(i["shape"][0]) for i in inputs if isinstance(i, dict) and isinstance(i.get("shape"), list) and i["shape"]), default=0)
    return 0


def create_app(champion: str, challenger: str | None = None, percent: int = 0, timeout: float = 30.0,
               max_body_bytes: int | None = None, max_batch: int | None = None) -> Any:
    """The router as a Starlette ASGI app (defaults: :mod:`serving.server`'s limits)."""
    import httpx

    from serving.server import (
        DEFAULT_MAX_BATCH,
        DEFAULT_MAX_BODY_BYTES,
        BodyLimit,
        RequestTooLarge,
        check_batch,
        too_large_response,
    )

    max_body_bytes = max_body_bytes or DEFAULT_MAX_BODY_BYTES
    max_batch = max_batch or DEFAULT_MAX_BATCH
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    state = {"split": Split(champion, challenger, percent)}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    client = httpx.AsyncClient(timeout=timeout, limits=limits)

    def split_json() -> dict[str, Any]:
        s = state["split"]
        return {"champion": s.champion, "challenger": s.challenger, "percent": s.percent}

    async def forward(request: Request) -> Response:
        split: Split = state["split"]  # one read: the whole request uses this split
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        arm = "challenger" if split.challenger and routes_to_challenger(request_id, split.percent) else "champion"
        body = await request.body()
        try:
            check_batch(batch_size(body), max_batch)
        except RequestTooLarge as exc:
            return too_large_response(str(exc))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["x-request-id"] = request_id
        order = [arm] + (["champion" if arm == "challenger" else "challenger"] if split.challenger else [])
        last_exc: Exception | None = None
        for tried, name in enumerate(order):
            base = split.challenger if name == "challenger" else split.champion
            try:
                upstream = await client.request(request.method, f"{base}{request.url.path}", params=request.query_params,
                                                content=body, headers=headers)
            except httpx.TransportError as exc:  # server gone (e.g. stopped after a swap): try the other arm
                last_exc = exc
                continue
            out = {k: v for k, v in upstream.headers.items() if k.lower() in FORWARD_RESPONSE_HEADERS}
            out.update({"x-served-by": name, "x-router-retries": str(tried)})
            out.setdefault("x-request-id", request_id)  # the predictor's own id (its log key) passes through
            return Response(upstream.content, status_code=upstream.status_code, headers=out)
        return JSONResponse({"error": f"no model server reachable: {last_exc}"}, status_code=503, headers={"x-request-id": request_id})

    async def traffic(request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            percent = body.get("percent")
            if not isinstance(percent, int) or not 0 <= percent <= 100:
                return JSONResponse({"error": "percent must be an integer in 0..100"}, status_code=400)
            s = state["split"]
            if percent and not s.challenger:
                return JSONResponse({"error": "no challenger registered; POST /admin/backends first"}, status_code=409)
            state["split"] = Split(s.champion, s.challenger, percent)
        return JSONResponse(split_json())

    async def backends(request: Request) -> Response:
        body = await request.json()
        if not body.get("champion"):
            return JSONResponse({"error": "champion URL is required"}, status_code=400)
        state["split"] = Split(body["champion"], body.get("challenger"), int(body.get("percent", 0)))
        return JSONResponse(split_json())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, **split_json()})

    routes = [
        Route("/admin/traffic", traffic, methods=["GET", "POST"]),
        Route("/admin/backends", backends, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/{rest:path}", forward, methods=["GET", "POST"]),
        Route("/v2/{rest:path}", forward, methods=["GET", "POST"]),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await client.aclose()

    from starlette.middleware import Middleware

    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(BodyLimit, max_bytes=max_body_bytes)])


def main(argv: list[str] | None = None) -> None:
    """Wire arguments and run the router with uvicorn."""
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m serving.router", description="Canary traffic split for local model servers.")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--champion", required=True, help="base URL of the champion model server")
    p.add_argument("--challenger", default=None, help="base URL of the challenger model server")
    p.add_argument("--percent", type=int, default=0, help="canaryTrafficPercent: share of requests for the challenger")
    from serving.server import add_server_arguments

    add_server_arguments(p)
    args = p.parse_args(argv)
    app = create_app(args.champion, args.challenger, args.percent, max_body_bytes=args.max_body_bytes, max_batch=args.max_batch)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

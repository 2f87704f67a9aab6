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

Cohort routes (the local stand-in for a KServe InferenceGraph ``Switch`` on the cohort):
with ``--cohort-column user_cohort --route casual=http://...``, a row whose cohort has a
route goes to that cohort's champion (its specialist), every other row to the global
champion. ``--canary-cohort casual`` confines the canary to that cohort: only its rows are
split by ``percent``, other cohorts' rows never reach the challenger; a global canary splits
only the rows the global champion serves (a cohort with a specialist stays on it). A batch whose rows
go to different servers is sent as one request per row (row ``i`` of request ``R`` as
request id ``R-i``, the predictor's own per-row log id) and the answers are merged in
order. ``x-served-by`` names the arm: ``champion``, ``champion-<cohort>`` or ``challenger``.

>>> split = Split("http://global", "http://canary", 100, {"casual": "http://casual"}, "user_cohort", "casual")
>>> choose(split, "casual", "r1"), choose(split, "power", "r1"), choose(split, None, "r1")
('challenger', 'champion', 'champion')
>>> choose(Split("http://global", None, 0, {"casual": "http://casual"}, "user_cohort"), "casual", "r1")
'champion-casual'
>>> global_canary = Split("http://global", "http://canary", 100, {"casual": "http://casual"}, "user_cohort")
>>> choose(global_canary, "casual", "r1"), choose(global_canary, "power", "r1")
('champion-casual', 'challenger')

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
from dataclasses import dataclass, field, replace
from typing import Any

FORWARD_RESPONSE_HEADERS = ("content-type", "x-model-version", "x-request-id")
HOP_BY_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}


def routes_to_challenger(request_id: str, percent: int) -> bool:
    """Whether a request id falls in the challenger's share (stable across processes)."""
    bucket = int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=8).digest(), "big") % 100
    return bucket < percent


@dataclass
class Split:
    """The current traffic split (replaced as a whole, never mutated field by field).

    ``routes`` maps a cohort value (of ``cohort_column``) to its specialist's server;
    ``cohort`` confines the challenger's share to that cohort's rows (None: every row).
    """

    champion: str
    challenger: str | None = None
    percent: int = 0
    routes: dict[str, str] = field(default_factory=dict)
    cohort_column: str | None = None
    cohort: str | None = None

    def url(self, arm: str) -> str:
        """The server of ``arm`` (``champion``, ``challenger`` or ``champion-<cohort>``)."""
        if arm == "challenger" and self.challenger:
            return self.challenger
        if arm.startswith("champion-") and arm.removeprefix("champion-") in self.routes:
            return self.routes[arm.removeprefix("champion-")]
        return self.champion


def choose(split: Split, cohort: str | None, request_id: str) -> str:
    """The arm of one row: the challenger for its canary share, else its cohort's specialist when it has a route,
    else the global champion. A cohort canary (``split.cohort``) takes only that cohort's rows; a global canary
    only the rows the global champion serves (a cohort with a specialist stays on it)."""
    routed = cohort is not None and str(cohort) in split.routes
    canary_row = (not routed) if split.cohort is None else (cohort is not None and str(cohort) == split.cohort)
    if split.challenger and canary_row and routes_to_challenger(request_id, split.percent):
        return "challenger"
    if cohort is not None and str(cohort) in split.routes:
        return f"champion-{cohort}"
    return "champion"


def row_cohorts(body: bytes, column: str | None) -> list[str | None] | None:
    """The cohort of each row of a v1 (``instances``) or v2 (input named ``column``) body; None when it has no rows.

    >>> row_cohorts(b'{"instances": [{"c": "a"}, {"x": 1}]}', "c")
    ['a', None]
    >>> row_cohorts(b'{"inputs": [{"name": "c", "shape": [2], "data": ["a", "b"]}]}', "c")
    ['a', 'b']
    """
    import json

    if column is None:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("instances"), list):
        return [(str(i[column]) if isinstance(i, dict) and i.get(column) is not None else None) for i in payload["instances"]]
    for tensor in payload.get("inputs") or []:
        if isinstance(tensor, dict) and tensor.get("name") == column and isinstance(tensor.get("data"), list):
            return [None if v is None else str(v) for v in tensor["data"]]
    return None


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
               max_body_bytes: int | None = None, max_batch: int | None = None, *, routes: dict[str, str] | None = None,
               cohort_column: str | None = None, cohort: str | None = None) -> Any:
    """The router as a Starlette ASGI app (defaults: :mod:`serving.server`'s limits; cohort routes as in the module docstring)."""
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

    state = {"split": Split(champion, challenger, percent, dict(routes or {}), cohort_column, cohort)}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    client = httpx.AsyncClient(timeout=timeout, limits=limits)

    def split_json() -> dict[str, Any]:
        s = state["split"]
        return {"champion": s.champion, "challenger": s.challenger, "percent": s.percent, "routes": dict(s.routes),
                "cohort_column": s.cohort_column, "cohort": s.cohort}

    async def send(request: Request, split: Split, arm: str, body: bytes, headers: dict[str, str], request_id: str) -> Response:
        """Forward ``body`` to ``arm``; a connection error is retried once on another arm."""
        others = [a for a in ("champion", "challenger") if a != arm and (a == "champion" or split.challenger)]
        order = [arm, *others[:1]]
        last_exc: Exception | None = None
        for tried, name in enumerate(order):
            try:
                upstream = await client.request(request.method, f"{split.url(name)}{request.url.path}", params=request.query_params,
                                                content=body, headers={**headers, "x-request-id": request_id})
            except httpx.TransportError as exc:  # server gone (e.g. stopped after a swap): try the other arm
                last_exc = exc
                continue
            out = {k: v for k, v in upstream.headers.items() if k.lower() in FORWARD_RESPONSE_HEADERS}
            out.update({"x-served-by": name, "x-router-retries": str(tried)})
            out.setdefault("x-request-id", request_id)  # the predictor's own id (its log key) passes through
            return Response(upstream.content, status_code=upstream.status_code, headers=out)
        return JSONResponse({"error": f"no model server reachable: {last_exc}"}, status_code=503, headers={"x-request-id": request_id})

    async def per_row(request: Request, split: Split, arms: list[str], body: bytes, headers: dict[str, str], request_id: str) -> Response:
        """A v1 batch whose rows go to different arms: one request per row (id ``<request id>-<i>``), answers merged in
        order, with ``ids``: the id each row's predictor logged it under."""
        import asyncio
        import json

        instances = json.loads(body)["instances"]
        replies = await asyncio.gather(*(send(request, split, arm, json.dumps({"instances": [row]}).encode(), headers, f"{request_id}-{i}")
                                         for i, (arm, row) in enumerate(zip(arms, instances, strict=True))))
        failed = next((r for r in replies if r.status_code != 200), None)
        if failed is not None:
            return Response(failed.body, status_code=failed.status_code, headers={"x-request-id": request_id, "x-served-by": ",".join(arms)})
        answers = [json.loads(r.body) for r in replies]
        versions = [r.headers.get("x-model-version", "") for r in replies]
        # each row was logged by its predictor under that predictor's own id: the client needs them to find
        # (and label) its rows, the router's id names no log record
        ids = [r.headers.get("x-request-id") or a.get("id") for r, a in zip(replies, answers, strict=True)]
        merged = {"predictions": [a["predictions"][0] for a in answers], "model_versions": versions, "ids": ids}
        return JSONResponse(merged, headers={"x-request-id": request_id, "x-served-by": ",".join(arms),
                                             "x-model-version": ",".join(dict.fromkeys(versions))})

    async def forward(request: Request) -> Response:
        split: Split = state["split"]  # one read: the whole request uses this split
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        body = await request.body()
        try:
            check_batch(batch_size(body), max_batch)
        except RequestTooLarge as exc:
            return too_large_response(str(exc))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        cohorts = row_cohorts(body, split.cohort_column) if (split.routes or split.cohort) else None
        if not cohorts:
            arm = "challenger" if split.challenger and split.cohort is None and routes_to_challenger(request_id, split.percent) else "champion"
            return await send(request, split, arm, body, headers, request_id)
        ids = [request_id] if len(cohorts) == 1 else [f"{request_id}-{i}" for i in range(len(cohorts))]
        arms = [choose(split, c, rid) for c, rid in zip(cohorts, ids, strict=True)]
        if len(set(arms)) == 1:
            return await send(request, split, arms[0], body, headers, request_id)
        if not request.url.path.startswith("/v1/"):
            return JSONResponse({"error": f"a v2 batch mixes rows for {sorted(set(arms))}: send one cohort per request"},
                                status_code=400, headers={"x-request-id": request_id})
        return await per_row(request, split, arms, body, headers, request_id)

    async def traffic(request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            percent = body.get("percent")
            if not isinstance(percent, int) or not 0 <= percent <= 100:
                return JSONResponse({"error": "percent must be an integer in 0..100"}, status_code=400)
            s = state["split"]
            if percent and not s.challenger:
                return JSONResponse({"error": "no challenger registered; POST /admin/backends first"}, status_code=409)
            state["split"] = replace(s, percent=percent)
        return JSONResponse(split_json())

    async def backends(request: Request) -> Response:
        """Swap the servers; ``routes``, ``cohort_column`` and ``cohort`` keep their values unless given."""
        body = await request.json()
        if not body.get("champion"):
            return JSONResponse({"error": "champion URL is required"}, status_code=400)
        s = state["split"]
        routes = body.get("routes", s.routes)
        if not isinstance(routes, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in routes.items()):
            return JSONResponse({"error": "routes must map cohort values to server URLs"}, status_code=400)
        column = body.get("cohort_column", s.cohort_column)
        if routes and not column:
            return JSONResponse({"error": "routes need cohort_column (the request field naming the cohort)"}, status_code=400)
        state["split"] = Split(body["champion"], body.get("challenger"), int(body.get("percent", 0)), dict(routes), column,
                               body.get("cohort", s.cohort))
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
    p.add_argument("--cohort-column", default=None, help="the request field naming the cohort (routes and a cohort canary need it)")
    p.add_argument("--route", action="append", default=[], metavar="COHORT=URL", help="the cohort's specialist server (repeatable)")
    p.add_argument("--canary-cohort", default=None, help="split only this cohort's rows; other cohorts never reach the challenger")
    from serving.server import add_server_arguments

    add_server_arguments(p)
    args = p.parse_args(argv)
    routes = dict(r.split("=", 1) for r in args.route if "=" in r)
    if len(routes) != len(args.route) or ((routes or args.canary_cohort) and not args.cohort_column):
        p.error("--route takes COHORT=URL, and --route/--canary-cohort need --cohort-column")
    app = create_app(args.champion, args.challenger, args.percent, max_body_bytes=args.max_body_bytes, max_batch=args.max_batch,
                     routes=routes, cohort_column=args.cohort_column, cohort=args.canary_cohort)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

"""Cohort routes in the local router (a real process) in front of three small HTTP servers: rows go to
their cohort's specialist, else to the global champion; a cohort canary splits only that cohort's rows;
mixed batches are sent row by row under the predictor's per-row ids."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serving_fixtures import REPO_ROOT, free_port

from serving.router import routes_to_challenger

pytestmark = pytest.mark.integration


class Server:
    """A model server stub: answers every predict with its version, one prediction per instance, and remembers what it saw."""

    def __init__(self, version: str) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        self.version, self.seen = version, []  # (client request id, cohort) per row
        self.logged: dict[str, str] = {}  # as the predictor: its own id per request -> the client's id

        async def predict(request: Any) -> Any:
            body = await request.json()
            rid = request.headers["x-request-id"]
            own = f"s{version}-{len(self.logged)}"  # like serving.predictor, the server makes the id it logs under
            self.logged[own] = rid
            rows = body["instances"]
            self.seen += [(rid if len(rows) == 1 else f"{rid}-{i}", r.get("user_cohort")) for i, r in enumerate(rows)]
            return JSONResponse({"predictions": [float(version)] * len(rows)}, headers={"x-model-version": version, "x-request-id": own})

        port = free_port()
        app = Starlette(routes=[Route("/v1/models/m:predict", predict, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
def servers(tmp_path) -> Iterator[tuple[str, Server, Server, Server]]:
    glob, casual, canary = Server("1"), Server("2"), Server("3")
    port = free_port()
    log = open(tmp_path / "router.log", "wb")  # noqa: SIM115 - child output; closed below
    proc = subprocess.Popen([sys.executable, "-m", "serving.router", "--port", str(port), "--champion", glob.url,
                             "--cohort-column", "user_cohort", "--route", f"casual={casual.url}"],
                            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a loaded shared machine can take minutes to start a process
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, (tmp_path / "router.log").read_text()[-2000:]
            time.sleep(0.1)
    try:
        yield url, glob, casual, canary
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        for s in (glob, casual, canary):
            s.server.should_exit = True


def post(client: httpx.Client, url: str, rid: str, cohorts: list[str | None]) -> httpx.Response:
    rows = [{"x": 1.0} | ({"user_cohort": c} if c else {}) for c in cohorts]
    return client.post(f"{url}/v1/models/m:predict", json={"instances": rows}, headers={"x-request-id": rid})


def test_rows_go_to_their_cohorts_specialist_else_to_the_global_champion(servers) -> None:
    url, glob, casual, _ = servers
    with httpx.Client() as c:
        one = post(c, url, "a", ["casual"])
        assert (one.headers["x-served-by"], one.json()["predictions"]) == ("champion-casual", [2.0])
        other = post(c, url, "b", ["power"])
        assert (other.headers["x-served-by"], other.json()["predictions"]) == ("champion", [1.0])
        assert post(c, url, "c", [None]).headers["x-served-by"] == "champion"  # no cohort field: the global champion
        mixed = post(c, url, "m", ["power", "casual", "new", "casual"])
    assert mixed.status_code == 200 and mixed.json()["predictions"] == [1.0, 2.0, 1.0, 2.0]  # merged in row order
    assert mixed.json()["model_versions"] == ["1", "2", "1", "2"]
    assert sorted(glob.seen) == [("b", "power"), ("c", None), ("m-0", "power"), ("m-2", "new")]  # per-row ids as the predictor logs them
    assert sorted(casual.seen) == [("a", "casual"), ("m-1", "casual"), ("m-3", "casual")]
    # each row's id is the one its predictor logged it under, so a client can find and label it
    logged = {own: (srv, client) for srv in (glob, casual) for own, client in srv.logged.items()}
    assert [logged[i] for i in mixed.json()["ids"]] == [(glob, "m-0"), (casual, "m-1"), (glob, "m-2"), (casual, "m-3")]


def test_a_global_canary_leaves_cohorts_with_a_specialist_on_it(servers) -> None:
    url, glob, casual, canary = servers
    httpx.post(f"{url}/admin/backends", json={"champion": glob.url, "challenger": canary.url, "percent": 100}).raise_for_status()
    with httpx.Client() as c:
        assert post(c, url, "g1", ["power"]).headers["x-served-by"] == "challenger"
        assert post(c, url, "g2", [None]).headers["x-served-by"] == "challenger"
        assert post(c, url, "g3", ["casual"]).headers["x-served-by"] == "champion-casual"
    assert {cohort for _, cohort in canary.seen} == {"power", None}


def test_a_cohort_canary_never_sends_other_cohorts_to_the_challenger(servers) -> None:
    url, glob, casual, canary = servers
    httpx.post(f"{url}/admin/backends", json={"champion": glob.url, "challenger": canary.url, "percent": 50, "cohort": "casual"}).raise_for_status()
    state = httpx.get(f"{url}/healthz").json()
    assert (state["routes"], state["cohort"], state["cohort_column"]) == ({"casual": casual.url}, "casual", "user_cohort")  # kept
    cohorts = ["casual", "power", "new"]
    with httpx.Client() as c:
        replies = [post(c, url, f"r{i}", [cohorts[i % 3]]) for i in range(240)]
    served = {(cohorts[i % 3], r.headers["x-served-by"]) for i, r in enumerate(replies)}
    assert served == {("casual", "challenger"), ("casual", "champion-casual"), ("power", "champion"), ("new", "champion")}
    assert {cohort for _, cohort in canary.seen} == {"casual"}  # asserted on what the challenger received
    expected = sorted(f"r{i}" for i in range(0, 240, 3) if routes_to_challenger(f"r{i}", 50))
    assert sorted(rid for rid, _ in canary.seen) == expected  # the split is by request id, as for the global canary
    assert 0.3 < len(expected) / 80 < 0.7
    assert httpx.post(f"{url}/admin/backends", json={"champion": glob.url, "routes": {"casual": ""}}).status_code == 400

"""The local canary router (a real process) in front of two small HTTP backends: the split
follows canaryTrafficPercent by request id, shifts under load fail no request, and a dead
backend is retried on the other arm."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from serving_fixtures import REPO_ROOT, free_port

from serving.router import routes_to_challenger

pytestmark = pytest.mark.integration


def backend(version: str):
    """A minimal model server answering every predict with its version."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def predict(request):
        await request.body()
        return JSONResponse({"predictions": [0.5]}, headers={"x-model-version": version})

    port = free_port()
    app = Starlette(routes=[Route("/v1/models/m:predict", predict, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
def setup(tmp_path):
    s1, champion = backend("1")
    s2, challenger = backend("2")
    port = free_port()
    log = open(tmp_path / "router.log", "wb")  # noqa: SIM115 - child output; closed below
    proc = subprocess.Popen([sys.executable, "-m", "serving.router", "--port", str(port), "--champion", champion],
                            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield url, champion, challenger, s2
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        s1.should_exit = s2.should_exit = True


def test_split_shift_and_retry(setup) -> None:
    url, champion, challenger, challenger_server = setup
    assert httpx.post(f"{url}/admin/traffic", json={"percent": 10}).status_code == 409  # no challenger yet
    httpx.post(f"{url}/admin/backends", json={"champion": champion, "challenger": challenger, "percent": 30}).raise_for_status()
    with httpx.Client() as c:
        served = [c.post(f"{url}/v1/models/m:predict", json={"instances": [{}]}, headers={"x-request-id": f"id-{i}"}) for i in range(300)]
    # deterministic by request id: exactly the ids that hash under 30
    expected = ["challenger" if routes_to_challenger(f"id-{i}", 30) else "champion" for i in range(300)]
    assert [r.headers["x-served-by"] for r in served] == expected
    assert {r.headers["x-model-version"] for r in served if r.headers["x-served-by"] == "challenger"} == {"2"}
    assert 0.2 < expected.count("challenger") / 300 < 0.4
    assert httpx.post(f"{url}/admin/traffic", json={"percent": 101}).status_code == 400

    # shift the split 60 times while 6 clients send requests: nothing may fail
    stop = threading.Event()
    statuses: list[int] = []

    def client() -> None:
        with httpx.Client() as c:
            while not stop.is_set():
                statuses.append(c.post(f"{url}/v1/models/m:predict", json={"instances": [{}]}).status_code)

    with ThreadPoolExecutor(6) as pool:
        for _ in range(6):
            pool.submit(client)
        for i in range(60):
            httpx.post(f"{url}/admin/traffic", json={"percent": (i * 37) % 101}).raise_for_status()
            time.sleep(0.02)
        stop.set()
    assert len(statuses) > 100 and set(statuses) == {200}

    # the challenger dies: its share is retried on the champion, still no failure
    httpx.post(f"{url}/admin/traffic", json={"percent": 100}).raise_for_status()
    challenger_server.should_exit = True
    time.sleep(0.5)
    r = httpx.post(f"{url}/v1/models/m:predict", json={"instances": [{}]})
    assert r.status_code == 200 and r.headers["x-served-by"] == "champion" and r.headers["x-router-retries"] == "1"


def test_oversized_bodies_and_batches_get_413_before_forwarding(tmp_path) -> None:
    s1, champion = backend("1")
    port = free_port()
    log = open(tmp_path / "router.log", "wb")  # noqa: SIM115 - child output; closed below
    proc = subprocess.Popen([sys.executable, "-m", "serving.router", "--port", str(port), "--champion", champion,
                             "--max-body-bytes", "2000", "--max-batch", "3"], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        predict = f"{url}/v1/models/m:predict"
        assert httpx.post(predict, json={"instances": [{}] * 3}).status_code == 200
        batch = httpx.post(predict, json={"instances": [{}] * 4})
        assert batch.status_code == 413 and "4 instances; the limit is 3 (--max-batch)" in batch.json()["error"]
        big = httpx.post(predict, json={"instances": [{"x": "y" * 3000}]})
        assert big.status_code == 413 and "the limit is 2000 (--max-body-bytes)" in big.json()["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        s1.should_exit = True

"""ReplayTraffic against a real predictor behind the real router: labels are kept under the id
the predictor returned (its log key), never under the id ReplayTraffic sent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_fixtures import CATEGORICAL, MODEL, NUMERIC, REPO_ROOT, free_port, make_data

from serving.prediction_log import join_labels, read_log
from serving.traffic import ReplayTraffic

pytestmark = pytest.mark.integration


def _router(champion: str, tmp_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(tmp_path / "router.log", "wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "serving.router", "--port", str(port), "--champion", champion], cwd=REPO_ROOT,
                                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise TimeoutError(f"router not ready: {(tmp_path / 'router.log').read_text()[-2000:]}")


def test_labels_are_keyed_by_the_id_the_predictor_returned(start_predictor, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    predictor = start_predictor(f"models:/{MODEL}@champion", log_dir=log_dir)
    router, url = _router(predictor, tmp_path)
    try:
        data = make_data(40, seed=3)
        traffic = ReplayTraffic(url, MODEL, data, [*NUMERIC, *CATEGORICAL], label="label", threads=2)
        singles = traffic.send(data.iloc[:10], "p", batch=1)
        batched = traffic.send(data.iloc[10:20], "p", batch=5)  # the same client ids again: new server ids
        with traffic:  # the background mode keys its labels the same way
            deadline = time.monotonic() + 30
            while traffic.sent < 30 and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        router.terminate()
        router.wait(timeout=20)
    assert traffic.failed == 0 and len(singles) == 10 and len(batched) == 10
    assert not set(singles) & {f"p-{n}" for n in range(10)}  # none is an id we sent
    assert {i.rsplit("-", 1)[1] for i in batched} == {"0", "1", "2", "3", "4"} and len(set(batched)) == 10
    time.sleep(0.5)  # the predictor flushes its log every 0.2 s
    log = read_log(log_dir, MODEL)
    labels = traffic.labels()
    assert labels["request_id"].is_unique and set(labels["request_id"]) <= set(log["request_id"])
    assert set(singles) | set(batched) <= set(labels["request_id"])
    joined = join_labels(log, labels).set_index("request_id")
    assert len(joined) == len(labels)  # every label finds its record
    # the ids we sent are only data: client_request_id, shared by the two sends
    assert joined.loc[singles[0], "client_request_id"] == "p-0" and joined.loc[batched[0], "client_request_id"] == "p-0"
    by_row = dict(zip(data["x1"], data["label"], strict=True))
    assert all(by_row[x] == y for x, y in zip(joined["x1"], joined["label"], strict=True))  # each label sits on its own row

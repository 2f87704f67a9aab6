"""The KServe logger sink as a real process: request/response CloudEvents in either order
become prediction-log records."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_fixtures import REPO_ROOT, free_port

from serving.prediction_log import read_log

pytestmark = pytest.mark.integration


def event(kind: str, event_id: str, body: dict) -> tuple[dict, bytes]:
    headers = {"ce-id": event_id, "ce-type": f"org.kubeflow.serving.inference.{kind}", "ce-specversion": "1.0",
               "ce-source": "http://localhost:9081/", "ce-inferenceservicename": "churn", "content-type": "application/json"}
    return headers, json.dumps(body).encode()


def test_sink_pairs_events_into_the_prediction_log(tmp_path: Path) -> None:
    port = free_port()
    log = open(tmp_path / "sink.log", "wb")  # noqa: SIM115 - child output; closed in finally
    proc = subprocess.Popen([sys.executable, "-m", "serving.log_sink", "--http-port", str(port), "--log-dir", str(tmp_path / "log"), "--host", "127.0.0.1"],
                            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}healthz")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        req = {"instances": [{"x": 1.0, "customer_id": 5}, {"x": 2.0, "customer_id": 6}]}
        resp = {"predictions": [0.3, 0.8], "model_version": "7"}
        for kind, eid, body in (("request", "a", req), ("response", "a", resp), ("response", "b", resp), ("request", "b", req)):
            headers, content = event(kind, eid, body)
            assert httpx.post(url, headers=headers, content=content).status_code in (200, 202)
        headers, content = event("response", "c", resp)  # its request never comes: nothing is logged
        httpx.post(url, headers=headers, content=content)
        assert httpx.post(url, headers={"ce-id": "x"}, content=b"{}").status_code == 400
    finally:
        proc.terminate()  # the sink flushes its loggers on shutdown
        proc.wait(timeout=20)
        log.close()
    df = read_log(tmp_path / "log", "churn")
    assert sorted(df["request_id"]) == ["a-0", "a-1", "b-0", "b-1"]
    assert set(df["model_version"]) == {"7"} and sorted(df["prediction"]) == [0.3, 0.3, 0.8, 0.8]
    assert sorted(df["customer_id"]) == [5, 5, 6, 6]

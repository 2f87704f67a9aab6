"""The KServe logger sink: as a real process (request/response CloudEvents in either order
become prediction-log records) and in process (one logger per model, body and pending limits,
bad bodies and names, health while writes fail, two replicas sharing one log folder)."""

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


def event(kind: str, event_id: str, body: dict) -> tuple[dict, bytes]:
    headers = {"ce-id": event_id, "ce-type": f"org.kubeflow.serving.inference.{kind}", "ce-specversion": "1.0",
               "ce-source": "http://localhost:9081/", "ce-inferenceservicename": "churn", "content-type": "application/json"}
    return headers, json.dumps(body).encode()


@pytest.mark.integration
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


# --- in-process sink: bounds, bad input, health, replicas (issue 13) ---

REQ = {"instances": [{"x": 1.0, "customer_id": 5}]}
RESP = {"predictions": [0.3], "model_version": "7"}


def in_process(tmp_path: Path, **options: object):  # noqa: ANN201 - a TestClient
    from starlette.testclient import TestClient

    from serving.log_sink import create_app

    return TestClient(create_app(tmp_path / "log", flush_interval=0.01, **options))


@pytest.mark.unit
def test_one_logger_and_one_thread_per_model(tmp_path: Path) -> None:
    import threading

    before = threading.active_count()
    with in_process(tmp_path) as client:
        for i in range(20):
            for kind, body in (("request", REQ), ("response", RESP)):
                headers, content = event(kind, f"id{i}", body)
                assert client.post("/", headers=headers, content=content).status_code == 202
        assert list(client.app.state.sink.loggers) == ["churn"]
        # the TestClient's portal thread plus one flusher, not one per event
        assert threading.active_count() <= before + 2
    assert len(read_log(tmp_path / "log", "churn")) == 20


@pytest.mark.unit
def test_rows_are_keyed_by_the_predictors_id_and_keep_the_client_id(tmp_path: Path) -> None:
    hostile = ["same", "same", "../x", "a" * 10_000, "ünïcödé ✓"]
    with in_process(tmp_path) as client:
        for n, client_id in enumerate(hostile):
            meta = {"ce-metadata": json.dumps({"X-Request-Id": [client_id]})}
            for kind, body in (("request", REQ), ("response", {**RESP, "id": f"server-{n}"})):
                headers, content = event(kind, f"event-{n}", body)
                assert client.post("/", headers={**headers, **meta}, content=content).status_code == 202
        headers, content = event("request", "no-meta", REQ)  # no metadata: no client id, still logged
        client.post("/", headers={**headers, "ce-metadata": "not json"}, content=content)
        headers, content = event("response", "no-meta", {**RESP, "id": "server-9"})
        client.post("/", headers=headers, content=content)
    df = read_log(tmp_path / "log", "churn").set_index("request_id")
    assert sorted(df.index) == [f"server-{n}" for n in (0, 1, 2, 3, 4, 9)]  # the two "same" requests are two records
    assert df.loc["server-0", "client_request_id"] == df.loc["server-1", "client_request_id"] == "same"
    assert df.loc["server-2", "client_request_id"] == "../x" and df.loc["server-3", "client_request_id"] == "a" * 128
    assert df.loc["server-4", "client_request_id"] == "ünïcödé ✓" and df.loc["server-9", "client_request_id"] is None
    assert set(df["prediction"]) == {0.3} and set(df["customer_id"]) == {5}
    assert [p.parent.parent.name for p in (tmp_path / "log").rglob("*.jsonl")] == ["churn"]  # no file named after a client id


@pytest.mark.unit
def test_oversized_bodies_get_413_with_a_json_error(tmp_path: Path) -> None:
    with in_process(tmp_path, max_body_bytes=100) as client:
        headers, content = event("request", "big", {"instances": [{"x": "y" * 200}]})
        r = client.post("/", headers=headers, content=content)
        assert r.status_code == 413 and "over the limit of 100" in r.json()["error"]
        headers["transfer-encoding"] = "chunked"  # no content-length: measured after reading
        r = client.post("/", headers={k: v for k, v in headers.items()}, content=iter([content]))
        assert r.status_code == 413


@pytest.mark.unit
def test_a_malformed_half_gets_400_and_the_other_half_stays(tmp_path: Path) -> None:
    with in_process(tmp_path) as client:
        headers, content = event("request", "a", REQ)
        assert client.post("/", headers=headers, content=content).status_code == 202
        headers, _ = event("response", "a", RESP)
        for bad in (b"{not json", b"[1, 2]", b'{"no": "predictions"}'):
            r = client.post("/", headers=headers, content=bad)
            assert r.status_code == 400 and "stays in the log" in r.json()["error"]
        client.app.state.sink.close()
        pending = read_log(tmp_path / "log", "churn")
        assert len(pending) == 0 and pending.attrs["unpaired_halves"] == 1  # kept, waiting for its partner
        headers, content = event("response", "a", RESP)  # the sender retries with a valid body
        assert client.post("/", headers=headers, content=content).status_code == 202
    assert list(read_log(tmp_path / "log", "churn")["request_id"]) == ["a"]


@pytest.mark.unit
@pytest.mark.parametrize("name", ["../x", "../../etc", "a/b", ".x", "x" * 300])
def test_model_names_are_validated(tmp_path: Path, name: str) -> None:
    with in_process(tmp_path) as client:
        headers, content = event("request", "a", REQ)
        r = client.post("/", headers={**headers, "ce-inferenceservicename": name}, content=content)
        assert r.status_code == 400 and "is not a valid name" in r.json()["error"]
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing written anywhere


@pytest.mark.unit
def test_models_per_sink_are_bounded(tmp_path: Path) -> None:
    with in_process(tmp_path, max_models=2) as client:
        for i, expect in enumerate((202, 202, 400)):
            headers, content = event("request", "a", REQ)
            r = client.post("/", headers={**headers, "ce-inferenceservicename": f"m{i}"}, content=content)
            assert r.status_code == expect
        assert "already logs 2 models" in r.json()["error"]


@pytest.mark.unit
def test_healthz_is_503_while_writes_fail_and_pending_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_prediction_log import _disk_full

    state = {"full": 1}
    _disk_full(monkeypatch, state)
    with in_process(tmp_path, max_pending_bytes=1_000) as client:
        codes = []
        for i in range(40):
            headers, content = event("request", f"r{i}", REQ)
            codes.append(client.post("/", headers=headers, content=content).status_code)
        assert codes[0] == 202 and codes[-1] == 503  # the sender keeps what the sink cannot hold
        accepted = codes.count(202)
        deadline = time.monotonic() + 5
        while client.get("/healthz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = client.get("/healthz")
        assert r.status_code == 503 and "No space left" in r.json()["errors"]["churn"]
        assert client.get("/livez").status_code == 200  # liveness must not restart the pod meanwhile
        state["full"] = 0
        deadline = time.monotonic() + 10
        while client.get("/healthz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.get("/healthz").json()["ok"] is True
        for i in range(40):
            headers, content = event("response", f"r{i}", RESP)
            client.post("/", headers=headers, content=content)
    assert len(read_log(tmp_path / "log", "churn")) == accepted  # every accepted half was written


@pytest.mark.unit
def test_two_replicas_pair_halves_that_reached_different_pods(tmp_path: Path) -> None:
    import random

    from serving.log_sink import LogSink

    sinks = [LogSink(tmp_path, writer="pod-a", flush_interval=0.01), LogSink(tmp_path, writer="pod-b", flush_interval=0.01)]
    rng = random.Random(0)
    for i in range(200):
        halves = [("request", {"instances": [{"x": float(i)}]}), ("response", {"predictions": [i / 200], "model_version": "2"})]
        rng.shuffle(halves)  # either order, each half to a random replica
        for kind, body in halves:
            headers, content = event(kind, f"e{i}", body)
            assert rng.choice(sinks).receive(headers, content)[0] == 202
    for s in sinks:
        s.close()
    df = read_log(tmp_path, "churn")
    assert len(df) == 200 and df["request_id"].is_unique and df.attrs["unpaired_halves"] == 0
    assert (df.set_index("request_id")["x"] / 200).sort_index().equals(df.set_index("request_id")["prediction"].sort_index())

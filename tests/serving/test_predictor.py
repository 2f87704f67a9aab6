"""The KServe predictor process: v1 and v2 endpoints, 400s naming the field, the prediction
log and per-version Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving_fixtures import MODEL, NUMERIC, make_data, predictor_process

from serving.prediction_log import read_log

pytestmark = pytest.mark.integration


def _instances(n: int, seed: int = 5) -> list[dict]:
    df = make_data(n, seed)
    return df[[*NUMERIC, "segment"]].assign(customer_id=range(n)).to_dict("records")


def test_v1_v2_predict_log_and_metrics(start_predictor, store, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    url = start_predictor(f"models:/{MODEL}@champion", log_dir=log_dir)
    rows = _instances(20)
    r = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": rows[:1]}, headers={"x-request-id": "req-1"})
    assert r.status_code == 200, r.text
    assert r.headers["x-model-version"] == store.versions["good1"]
    server_id = r.headers["x-request-id"]
    assert server_id != "req-1" and r.json()["id"] == server_id  # the server's id, in the header and the body
    p1 = r.json()["predictions"]
    assert len(p1) == 1 and 0.0 <= p1[0] <= 1.0
    batch = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": rows}).json()["predictions"]
    assert batch[0] == pytest.approx(p1[0])
    # v2 / Open Inference Protocol: one named input tensor per feature.
    inputs = [{"name": c, "shape": [20], "datatype": "FP64", "data": [r[c] for r in rows]} for c in NUMERIC]
    inputs.append({"name": "segment", "shape": [20], "datatype": "BYTES", "data": [r["segment"] for r in rows]})
    v2 = httpx.post(f"{url}/v2/models/{MODEL}/infer", json={"id": "client-v2", "inputs": inputs}, headers={"x-request-id": "req-1"})
    assert v2.status_code == 200, v2.text
    assert np.allclose(v2.json()["outputs"][0]["data"], batch)
    v2_id = v2.headers["x-request-id"]
    assert v2.json()["id"] == v2_id and v2_id not in (server_id, "req-1", "client-v2")
    # a better-than-chance model on fresh data
    labels = make_data(20, 5)["label"].to_numpy()
    assert ((np.array(batch) >= 0.5) == labels).mean() > 0.6

    metrics = httpx.get(f"{url}/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(metrics)}
    reqs = [s for s in fams["driftloop_requests"].samples if s.name.endswith("_total")]
    assert reqs[0].labels["model_version"] == store.versions["good1"] and reqs[0].value == 3
    pred_count = [s for s in fams["driftloop_prediction"].samples if s.name.endswith("_count")][0]
    assert pred_count.value == 41

    import time

    time.sleep(0.5)  # the logger flushes every 0.2 s
    log = read_log(log_dir, MODEL)
    assert len(log) == 41
    first = log[log["request_id"] == server_id].iloc[0]
    assert first["prediction"] == pytest.approx(p1[0]) and first["customer_id"] == 0 and first["client_request_id"] == "req-1"
    v2_rows = log[log["client_request_id"] == "req-1"]["request_id"]
    assert sorted(v2_rows) == sorted([server_id, *(f"{v2_id}-{i}" for i in range(20))])
    assert set(log["model_version"]) == {store.versions["good1"]}


@pytest.fixture(scope="module")
def champion(store, tmp_path_factory: pytest.TempPathFactory):
    log_dir = tmp_path_factory.mktemp("log")
    with predictor_process(store, f"models:/{MODEL}@champion", log_dir) as url:
        yield url, log_dir


@pytest.fixture(scope="module")
def champion_url(champion: tuple[str, Path]) -> str:
    return champion[0]


def test_request_ids_are_made_by_the_server_never_taken_from_the_client(champion: tuple[str, Path]) -> None:
    from serving.prediction_log import join_labels

    url, log_dir = champion
    rows = _instances(3, seed=9)
    hostile: list[str | bytes] = ["same", "same", "../x", "a" * 10_000, "ünïcödé ✓".encode()]
    returned = []
    for client_id in hostile:
        r = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": rows[:1]}, headers={"x-request-id": client_id})
        assert r.status_code == 200, r.text
        returned.append(r.headers["x-request-id"])
    batch = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": rows}, headers={"x-request-id": "same"})
    batch_id = batch.headers["x-request-id"]
    ids = [*returned, batch_id]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)  # fresh hex ids, none the client's
    import time

    time.sleep(0.5)  # the logger flushes every 0.2 s
    log = read_log(log_dir, MODEL)
    mine = log[log["request_id"].isin([*returned, *(f"{batch_id}-{i}" for i in range(3))])].set_index("request_id")
    assert len(mine) == 8  # two clients sending "same" get two records; the batch keeps <id>-<i>
    assert mine.loc[returned[0], "client_request_id"] == mine.loc[returned[1], "client_request_id"] == "same"
    assert mine.loc[returned[2], "client_request_id"] == "../x" and mine.loc[returned[3], "client_request_id"] == "a" * 128
    assert mine.loc[returned[4], "client_request_id"]  # kept as text (the header's bytes as the server decoded them)
    assert list(mine.loc[[f"{batch_id}-{i}" for i in range(3)], "client_request_id"]) == ["same"] * 3
    assert not log["request_id"].isin(["same", "../x"]).any()
    assert {p.parent.parent.name for p in log_dir.rglob("*.jsonl")} == {MODEL}  # nothing written outside the model's folder
    # the returned id finds the record and its label; a label under the client's id finds nothing
    labels = pd.DataFrame({"request_id": [returned[1], "same"], "label": [1, 0]})
    joined = join_labels(log, labels)
    assert list(joined["request_id"]) == [returned[1]] and list(joined["label"]) == [1]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"instances": []}, "non-empty"),
        ({"instances": [{"x1": 1.0, "x2": 2.0, "segment": "a"}]}, "missing feature 'x3'"),
        ({"instances": [{"x1": "abc", "x2": 2.0, "x3": 1.0, "segment": "a"}]}, "instances[0].x1: expected a finite number"),
        ({"instances": [{"x1": 1.0, "x2": 2.0, "x3": 1.0, "segment": 3}]}, "instances[0].segment: expected a string"),
        ({"rows": []}, "instances"),
    ],
)
def test_malformed_requests_are_400_naming_the_field(champion_url: str, body: dict, needle: str) -> None:
    url = champion_url
    r = httpx.post(f"{url}/v1/models/{MODEL}:predict", json=body)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]


def test_nan_is_rejected(champion_url: str) -> None:
    url = champion_url
    content = b'{"instances": [{"x1": NaN, "x2": 1.0, "x3": 1.0, "segment": "a"}]}'
    r = httpx.post(f"{url}/v1/models/{MODEL}:predict", content=content, headers={"content-type": "application/json"})
    # JSON has no NaN: KServe's decoder rejects the literal before the model sees it
    # (serving.schema rejects a NaN that does arrive; see test_schema.py).
    assert r.status_code == 400 and "request format" in r.json()["error"]


def test_oversized_bodies_and_batches_get_413_naming_the_limit(start_predictor, store) -> None:
    url = start_predictor(f"models:/{MODEL}@champion", "--max-body-bytes", "4000", "--max-batch", "5")
    rows = _instances(6)
    ok = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": rows[:5]})
    assert ok.status_code == 200, ok.text
    batch = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": rows})
    assert batch.status_code == 413 and "6 instances; the limit is 5 (--max-batch)" in batch.json()["error"]
    inputs = [{"name": c, "shape": [6], "datatype": "FP64", "data": [r[c] for r in rows]} for c in NUMERIC]
    inputs.append({"name": "segment", "shape": [6], "datatype": "BYTES", "data": [r["segment"] for r in rows]})
    v2 = httpx.post(f"{url}/v2/models/{MODEL}/infer", json={"inputs": inputs})
    assert v2.status_code == 413 and "--max-batch" in v2.json()["error"]
    big = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": rows[:1], "pad": "x" * 5000})
    assert big.status_code == 413 and "the limit is 4000 (--max-body-bytes)" in big.json()["error"]

    def chunks():  # no Content-Length: the limit holds while the body streams
        for _ in range(10):
            yield b" " * 1000

    streamed = httpx.post(f"{url}/v1/models/{MODEL}:predict", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "--max-body-bytes" in streamed.json()["error"]


def test_local_predictor_listens_on_loopback_only(start_predictor) -> None:
    import psutil

    port = int(start_predictor(f"models:/{MODEL}@champion").rsplit(":", 1)[1])
    listening = {c.laddr.ip for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert listening == {"127.0.0.1"}


def test_host_defaults_to_loopback_and_follows_the_environment(monkeypatch) -> None:
    from serving.predictor import build_parser

    args = ["--model-name", "m", "--model-uri", "models:/m@champion"]
    monkeypatch.delenv("DRIFTLOOP_SERVER_HOST", raising=False)
    assert build_parser().parse_args(args).host == "127.0.0.1"
    monkeypatch.setenv("DRIFTLOOP_SERVER_HOST", "0.0.0.0")
    assert build_parser().parse_args(args).host == "0.0.0.0"

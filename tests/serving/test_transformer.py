"""The Feast transformer in front of a predictor: entity ids in, online features looked up,
predictions out, unknown ids rejected by name. Real Feast (local online store), real
KServe processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serving_fixtures import REPO_ROOT, Store, free_port, predictor_process, register, wait_ready

from components.data.scenarios import generate, write_scenario
from components.features import apply, ingest, materialize
from components.policy import load_policy
from components.settings import Settings
from serving.prediction_log import read_log

pytestmark = pytest.mark.e2e


def test_transformer_looks_up_features_and_forwards(tmp_path: Path) -> None:
    policy = load_policy("churn")
    settings = Settings(workdir=tmp_path / "work")
    apply(settings)
    write_scenario("churn", settings.data_dir, rows=24 * 40, seed=5)
    ingest("churn", settings)
    materialize("churn", "2024-01-01", "2026-01-01", settings)
    data = generate("churn", rows=24 * 40, seed=5)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    version = register(uri, tmp_path, 0, data=data, numeric=policy.features, categorical=policy.categorical_features, label=policy.label)
    store = Store(uri, tmp_path, {"v": version})
    log_dir = tmp_path / "log"
    with predictor_process(store, f"models:/churn/{version}", log_dir) as predictor:
        port = free_port()
        env = {**os.environ, "DRIFTLOOP_WORKDIR": str(settings.workdir), "PYTHONPATH": str(REPO_ROOT)}
        out = open(tmp_path / "transformer.log", "wb")  # noqa: SIM115 - child output; closed in finally
        proc = subprocess.Popen([sys.executable, "-m", "serving.transformer", "--policy", "churn", "--http-port", str(port),
                                 "--predictor-host", predictor.removeprefix("http://")], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, proc, log=tmp_path / "transformer.log")
            r = httpx.post(f"{url}/v1/models/churn:predict", json={"instances": [{"customer_id": 1}, {"customer_id": 7}]},
                           headers={"x-request-id": "tr-1"}, timeout=30)
            assert r.status_code == 200, r.text
            preds, server_id = r.json()["predictions"], r.json()["id"]
            assert len(preds) == 2 and all(0 <= p <= 1 for p in preds)
            bad = httpx.post(f"{url}/v1/models/churn:predict", json={"instances": [{"customer_id": 1}, {"customer_id": 987654}]}, timeout=30)
            assert bad.status_code == 400 and "unknown customer_id [987654]" in bad.json()["error"]
            nokey = httpx.post(f"{url}/v1/models/churn:predict", json={"instances": [{"id": 1}]}, timeout=30)
            assert nokey.status_code == 400 and "instances[0]: missing 'customer_id'" in nokey.json()["error"]
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            out.close()
    log = read_log(log_dir, "churn")
    # the predictor's id comes back through the transformer (body ``id``) and keys the log; the
    # client's id passed through is only client_request_id; the entity id rides along for label joins
    assert sorted(log["request_id"]) == [f"{server_id}-0", f"{server_id}-1"] and set(log["client_request_id"]) == {"tr-1"}
    assert sorted(log["customer_id"]) == [1, 7]

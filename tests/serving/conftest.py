"""Fixtures for the serving tests: a registry with real MLflow model versions and real
KServe predictor processes on free ports (always terminated)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (same as tests/conftest.py's)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

NUMERIC = ["x1", "x2", "x3"]
CATEGORICAL = ["segment"]
MODEL = "churn"


def make_data(n: int, seed: int) -> pd.DataFrame:
    """Synthetic labelled rows: label depends on x1, x2 and the segment."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.normal(size=n) for c in NUMERIC})
    df["segment"] = rng.choice(["a", "b"], size=n)
    logit = 2.5 * df["x1"] - 2.0 * df["x2"] + np.where(df["segment"] == "a", 0.5, -0.5)
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def policy_dict(**rollout: object) -> dict:
    """A policy for the test model; ``rollout`` overrides rollout settings."""
    return {
        "model": MODEL, "entity": "customer_id", "label": "label", "features": NUMERIC,
        "categorical_features": CATEGORICAL, "segments": {"column": "segment", "values": ["a", "b"]},
        "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.7}],
        "rollout": {"steps": [50, 100], "interval_seconds": 1.5, "min_requests": 20, "max_failed_checks": 0, **rollout},
    }


@dataclass
class Store:
    tracking_uri: str
    root: Path
    versions: dict[str, str]  # "good1", "good2", "bad" -> registry version


def register(tracking_uri: str, root: Path, seed: int, invert: bool = False) -> str:
    import joblib
    import mlflow
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    data = make_data(2000, seed)
    pipe = make_pipeline(
        ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)], remainder="passthrough"),
        LogisticRegression(),
    ).fit(data[NUMERIC + CATEGORICAL], data["label"])
    path = root / f"pipeline-{seed}-{invert}.joblib"
    joblib.dump(pipe, path)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("serving-tests")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(Path(__file__).with_name("model_code.py")), artifacts={"pipeline": str(path)},
            model_config={"features": NUMERIC, "categorical_features": CATEGORICAL, "invert": invert},
            registered_model_name=MODEL,
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One SQLite registry with three versions: two good models and an inverted (bad) one."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"
    os.environ.setdefault("MLFLOW_ARTIFACT_ROOT", str(root / "artifacts"))
    versions = {"good1": register(uri, root, 1), "good2": register(uri, root, 2), "bad": register(uri, root, 3, invert=True)}
    MlflowClient(uri).set_registered_model_alias(MODEL, "champion", versions["good1"])
    return Store(uri, root, versions)


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 90) -> None:
    """Poll KServe's readiness endpoint until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@contextmanager
def predictor_process(store: Store, uri: str, log_dir: Path, *extra: str) -> Iterator[str]:
    """A real ``python -m serving.predictor`` process; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "serving.predictor", "--model-name", MODEL, "--model-uri", uri,
           "--http-port", str(port), "--log-dir", str(log_dir), "--tracking-uri", store.tracking_uri, *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def start_predictor(store: Store, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory: start a predictor for a URI (extra CLI flags allowed); all stop at teardown."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        def start(uri: str, *extra: str, log_dir: Path | None = None) -> str:
            return stack.enter_context(predictor_process(store, uri, log_dir or tmp_path / "predlog", *extra))

        yield start

"""Reusable fixtures (import them into a test module): a real MLflow tracking server on PostgreSQL, and a trained credit-like model.

``mlflow_server`` (module scope) starts ``mlflow server`` on a fresh PostgreSQL database
(backend store) with a local directory behind ``--serve-artifacts``, waits for
``/health`` and stops it afterwards; its value is the server URL. Code elsewhere can
use :func:`running_mlflow_server` directly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from components.policy import Policy
from components.training.datasets import TrainingData, build_training_set
from components.training.evaluate import Verdict, evaluate
from components.training.trainers import TrainedModel, train_model
from tests.components.training.training_synth import make_frame, make_policy
from tests.conftest import free_port
from tests.conftest import fresh_database as conftest_fresh_database

MLFLOW = Path(sys.executable).parent / "mlflow"


def fresh_database() -> contextlib.AbstractContextManager[str]:
    """A new PostgreSQL database on localhost:5432 (dropped afterwards); yields its URL."""
    return conftest_fresh_database(prefix="dl_mlflow")


@contextlib.contextmanager
def running_mlflow_server(backend_uri: str, artifacts: Path, timeout: float = 120.0, app_name: str | None = None,
                          env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``mlflow server`` (one worker, served artifacts) until the block ends; yields its URL.

    ``app_name`` picks an MLflow app (``basic-auth``); ``env`` replaces the server's environment.
    """
    port = free_port()
    if backend_uri.startswith("postgresql://"):  # MLflow would pick psycopg 3, which is not installed
        backend_uri = "postgresql+psycopg2://" + backend_uri.removeprefix("postgresql://")
    artifacts.mkdir(parents=True, exist_ok=True)
    log = open(artifacts.parent / f"mlflow-server-{port}.log", "w")  # noqa: SIM115
    cmd = [str(MLFLOW), "server", *(("--app-name", app_name) if app_name else ()), "--backend-store-uri", backend_uri,
           "--artifacts-destination", str(artifacts), "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.flush()
                pytest.fail(f"mlflow server exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy after {timeout}s: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server runs uvicorn/gunicorn children in its own session
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@dataclass
class AuthServer:
    """A running basic-auth MLflow: its URL, the server's environment and who the bootstrap created."""

    url: str
    env: dict[str, str]
    created: list[str]


@contextlib.contextmanager
def running_basic_auth_mlflow(root: Path, reader: tuple[str, str], writer: tuple[str, str],
                              admin: tuple[str, str] = ("admin", "admin-password-1")) -> Iterator[AuthServer]:
    """MLflow's basic-auth app on fresh PostgreSQL backend and auth databases, users made by the MLflow pod's init step.

    ``reader``/``writer`` are (username, password), as the driftloop-mlflow Secret holds them.
    """
    from components.registry.store import AUTH_DATABASE_ENV, bootstrap_registry_auth

    with fresh_database() as backend, fresh_database() as auth_db:
        env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(root / "auth" / "basic_auth.ini"),
               AUTH_DATABASE_ENV: "postgresql+psycopg2://" + auth_db.removeprefix("postgresql://"),  # MLflow would pick psycopg 3
               "DRIFTLOOP_MLFLOW_READER_USERNAME": reader[0], "DRIFTLOOP_MLFLOW_READER_PASSWORD": reader[1],
               "DRIFTLOOP_MLFLOW_WRITER_USERNAME": writer[0], "DRIFTLOOP_MLFLOW_WRITER_PASSWORD": writer[1],
               "MLFLOW_AUTH_ADMIN_USERNAME": admin[0], "MLFLOW_AUTH_ADMIN_PASSWORD": admin[1],
               "MLFLOW_FLASK_SERVER_SECRET_KEY": "csrf-key-for-tests"}
        created = bootstrap_registry_auth(env)
        with running_mlflow_server(backend, root / "artifacts", app_name="basic-auth", env=env) as url:
            yield AuthServer(url, env, created)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real MLflow tracking server on PostgreSQL with served artifacts (module scope)."""
    with fresh_database() as db, running_mlflow_server(db, tmp_path_factory.mktemp("mlflow") / "artifacts") as url:
        yield url


@dataclass
class Trained:
    policy: Policy
    frame: pd.DataFrame
    data: TrainingData
    model: TrainedModel
    verdict: Verdict


@pytest.fixture(scope="module")
def trained() -> Trained:
    """A credit-like logistic regression trained on a full-history training set."""
    policy = make_policy()
    frame = make_frame()
    data = build_training_set(policy, "full", pd.Timestamp("2025-02-01", tz="UTC"), source=frame)
    model = train_model(policy, data.train)
    return Trained(policy, frame, data, model, evaluate(policy, model, None, data.holdout))

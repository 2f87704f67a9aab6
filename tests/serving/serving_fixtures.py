"""Helpers and fixtures for the serving tests: a registry with real MLflow model versions and real
KServe predictor processes on free ports (always terminated)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from serving.metrics import LATENCY_BUCKETS, PREDICTION_BUCKETS
from serving.prometheus import Sample, parse_selector
from serving.traffic import ReplayTraffic

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


def register(tracking_uri: str, root: Path | None, seed: int, invert: bool = False, data: pd.DataFrame | None = None,
             numeric: list[str] = NUMERIC, categorical: list[str] = CATEGORICAL, label: str = "label", name: str = MODEL) -> str:
    from model_code import log_safe_model
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    data = make_data(2000, seed) if data is None else data
    pipe = make_pipeline(
        ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), categorical)], remainder="passthrough"),
        LogisticRegression(max_iter=500),
    ).fit(data[numeric + categorical], 1 - data[label] if invert else data[label])  # invert: a deliberately bad model
    return log_safe_model(tracking_uri, root, pipe, data, numeric, categorical, name)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One SQLite registry with three versions: two good models and an inverted (bad) one."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"

    good1 = register(uri, root, 1)
    # a second version of the same good model: cheaper than logging another one
    first = MlflowClient(uri).get_model_version(MODEL, good1)
    good2 = str(MlflowClient(uri).create_model_version(MODEL, first.source, run_id=first.run_id, tags=first.tags).version)
    versions = {"good1": good1, "good2": good2, "bad": register(uri, root, 3, invert=True)}
    MlflowClient(uri).set_registered_model_alias(MODEL, "champion", versions["good1"])
    return Store(uri, root, versions)


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 90, log: Path | None = None) -> None:
    """Poll KServe's readiness endpoint until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:] if log else ''}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def start_server(cmd: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """Start a server process with its output in ``log_path`` (a file: a full pipe would block it).

    ``env`` replaces the environment (default: this one with the repo on PYTHONPATH); ``cwd``
    defaults to the repo root. Stop it with :func:`stop_server`.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)} if env is None else env
    with open(log_path, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=cwd or REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_server(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; waits for the exit."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def predictor_process(store: Store, uri: str, log_dir: Path, *extra: str) -> Iterator[str]:
    """A real ``python -m serving.predictor`` process; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "serving.predictor", "--model-name", MODEL, "--model-uri", uri,
           "--http-port", str(port), "--log-dir", str(log_dir), "--tracking-uri", store.tracking_uri, *extra]
    err_path = log_dir.parent / f"predictor-{port}.log"
    proc = start_server(cmd, err_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log=err_path)
        yield url
    finally:
        stop_server(proc)


@pytest.fixture
def start_predictor(store: Store, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory: start a predictor for a URI (extra CLI flags allowed); all stop at teardown."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        def start(uri: str, *extra: str, log_dir: Path | None = None) -> str:
            return stack.enter_context(predictor_process(store, uri, log_dir or tmp_path / "predlog", *extra))

        yield start


@pytest.fixture
def registry(store: Store, tmp_path: Path):
    """The project's ModelRegistry on the test store, aliases reset to champion=good1."""
    from components.registry import ModelRegistry
    from components.settings import Settings

    reg = ModelRegistry(Settings(workdir=tmp_path / "work", mlflow_tracking_uri=store.tracking_uri))
    client = reg._client()
    client.set_registered_model_alias(MODEL, "champion", store.versions["good1"])
    with contextlib.suppress(Exception):  # no challenger alias yet
        client.delete_registered_model_alias(MODEL, "challenger")
    return reg


def live_traffic(url: str, threads: int = 8, seed: int = 11) -> ReplayTraffic:
    """Background labelled requests of :func:`make_data` rows through ``url`` (the product's replayer)."""
    return ReplayTraffic(url, MODEL, make_data(20000, seed), [*NUMERIC, *CATEGORICAL], label="label", threads=threads)


class SpyBackend:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.percent = 0

    def deploy_challenger(self, uri: str) -> None:
        self.calls.append(("deploy", uri))

    def wait_ready(self, timeout: float = 0) -> None:
        self.calls.append(("ready",))

    def set_traffic(self, percent: int) -> None:
        self.calls.append(("traffic", percent))
        self.percent = percent

    def current_traffic(self) -> int:
        return self.percent

    def promote(self) -> None:
        self.calls.append(("promote",))

    def rollback(self) -> None:
        self.calls.append(("rollback",))
        self.percent = 0

    def metrics_targets(self) -> list[str]:
        return []


class FakeSource:
    """Counters per version, advanced by the test's sleep()."""

    def __init__(self, online: bool = True) -> None:
        self.online = online
        self.counts: dict[str, dict[str, float]] = {}

    def add(self, version: str, requests: int, errors: int = 0, latency: float = 0.004, prediction: float = 0.3) -> None:
        c = self.counts.setdefault(version, {"req": 0, "err": 0, "lat": latency, "pred": prediction})
        c["req"] += requests
        c["err"] += errors
        c["lat"], c["pred"] = latency, prediction

    def query(self, promql: str) -> list[Sample]:
        name, labels = parse_selector(promql)
        c = self.counts.get(labels["model_version"])
        if c is None:
            return []
        if name == "driftloop_requests_total":
            return [Sample(name, labels, c["req"])]
        if name == "driftloop_request_errors_total":
            return [Sample(name, labels, c["err"])]
        buckets, x = (LATENCY_BUCKETS, c["lat"]) if "latency" in name else (PREDICTION_BUCKETS, c["pred"])
        ok = c["req"] - c["err"]
        return [Sample(name, {**labels, "le": str(le)}, ok if x <= le else 0.0) for le in (*buckets, float("inf"))]

    def is_online(self) -> bool:
        return self.online


def start_prometheus(tmp_path: Path, targets: Sequence[str], *, file_sd: Path | None = None, rule_files: Sequence[Path] = (),
                     honor_targets: Sequence[str] = (), interval: str = "1s") -> tuple[subprocess.Popen, str]:
    """A real Prometheus scraping ``targets`` every ``interval``; returns (process, URL).

    ``file_sd``: a file_sd JSON file to scrape as well (rewrite it as targets come and go);
    ``rule_files``: alerting/recording rules evaluated every ``interval``; ``honor_targets``:
    targets scraped with ``honor_labels`` (a Pushgateway keeps the pushed job/instance labels).
    """
    import json

    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (scripts/install-system-deps.sh installs it)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    def hosts(urls: Sequence[str]) -> list[str]:
        return [u.removeprefix("http://") for u in urls]

    jobs: list[dict] = [{"job_name": "models", "static_configs": [{"targets": hosts(targets)}]}]
    if file_sd is not None:
        if not file_sd.exists():
            file_sd.write_text("[]")
        jobs.append({"job_name": "pods", "file_sd_configs": [{"files": [str(file_sd)], "refresh_interval": interval}]})
    if honor_targets:
        jobs.append({"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": hosts(honor_targets)}]})
    cfg = {"global": {"scrape_interval": interval, "evaluation_interval": interval}, "scrape_configs": jobs,
           "rule_files": [str(r) for r in rule_files]}
    config.write_text(json.dumps(cfg))  # JSON is YAML
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - child output, open while it runs
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


@contextmanager
def running_pushgateway() -> Iterator[str]:
    """A real Pushgateway (Debian's prometheus-pushgateway) on a free port, empty, stopped afterwards; yields its URL."""
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        pytest.fail("prometheus-pushgateway is not installed (run scripts/install-system-deps.sh)")
    port = free_port()
    # Debian persists to /var/lib/prometheus by default: an empty file name keeps each gateway fresh.
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(f"the Pushgateway did not start on {url}")
        yield url
    finally:
        stop_server(proc, timeout=10)

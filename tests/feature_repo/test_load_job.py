"""The cluster side of the Feast store: the feature-load Job and the Feast server, as manifests
build them, run against the real PostgreSQL + Redis; one set of DRIFTLOOP_FEAST_* names."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from components.features.config import ENV, SECRET
from components.settings import REPO_ROOT, Settings
from tests.conftest import free_port, fresh_database, port_open
from tests.manifests.manifest_checks import MANIFESTS, build

BIN = Path(sys.executable).parent  # driftloop, feast and python of this environment


def _objects(overlay: str = "dev") -> list[dict[str, Any]]:
    return build(MANIFESTS / "overlays" / overlay)


def _one(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]
    if obj["kind"] == "InferenceService":
        return [c for part in ("predictor", "transformer") for c in spec.get(part, {}).get("containers", [])]
    return list(spec["template"]["spec"]["containers"])


@pytest.mark.unit
@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_pod_maps_the_feast_secret_to_the_names_the_code_reads(overlay: str) -> None:
    wanted = {key: var for var, key, _ in ENV.values()}
    seen: dict[str, set[str]] = {}
    for obj in _objects(overlay):
        if obj["kind"] not in {"Deployment", "Job", "InferenceService"}:
            continue
        for c in _containers(obj):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef", {})
                if ref.get("name") == SECRET:
                    assert wanted.get(ref["key"]) == e["name"], f"{obj['metadata']['name']}: key {ref['key']} -> {e['name']}, the code reads {wanted.get(ref['key'])}"
                    seen.setdefault(obj["metadata"]["name"], set()).add(e["name"])
    all_three = set(wanted.values())
    assert seen["feature-load"] == all_three and seen["feast"] == all_three
    assert {"DRIFTLOOP_FEAST_REGISTRY_URL", "DRIFTLOOP_FEAST_REDIS"} <= seen["churn"], "transformers read the online store"


@pytest.mark.unit
def test_pipeline_steps_get_the_same_names() -> None:
    """pipelines/platform.py hands the Secret to KFP steps; its env names must be the ones read."""
    from pipelines import platform

    mapping = getattr(platform, "_FEAST_ENV", None)
    if mapping is None:
        pytest.skip("pipelines/platform.py no longer keeps _FEAST_ENV")
    expected = {key: var for var, key, _ in ENV.values()}
    if mapping != expected:
        pytest.xfail(f"pipelines/platform.py still maps {mapping}; the lead switches it to {expected} at merge")


@pytest.mark.unit
def test_load_job_calls_cli_options_that_exist() -> None:
    from driftloop.commands.features import features
    from driftloop.commands.scenario import scenario

    job = _one(_objects(), "Job", "feature-load")
    script = _containers(job)[0]["args"][0]
    calls = re.findall(r"driftloop (\S+)(?: (\S+))?([^\n]*)", script)
    assert [(c[0], c[1] if c[0] == "features" else "") for c in calls] == [
        ("features", "apply"), ("scenario", ""), ("features", "ingest"), ("features", "materialize")]
    for group, sub, rest in calls:
        command = features.commands[sub] if group == "features" else scenario
        flags = {u for u in rest.split() if u.startswith("--")} | ({sub} if sub.startswith("--") else set())
        options = {o for p in command.params for o in p.opts}
        assert flags <= options, f"driftloop {group} {sub}: unknown {flags - options}"
    env = {e["name"]: e.get("value") for e in _containers(job)[0]["env"]}
    assert set(env["SCENARIOS"].split()) <= {"churn", "credit", "fraud", "recsys", "concept"}


def _network() -> Any:
    """tests/manifests/test_manifests_network.py, whose ``allowed`` evaluates NetworkPolicy semantics."""
    sys.path.insert(0, str(REPO_ROOT / "tests" / "manifests"))
    try:
        import test_manifests_network
    finally:
        sys.path.pop(0)
    return test_manifests_network


@pytest.mark.unit
def test_load_job_may_reach_postgres_and_redis_only() -> None:
    net = _network()
    objs = _objects("prod")
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    load = (_one(objs, "Job", "feature-load")["spec"]["template"]["metadata"]["labels"], net.NS)
    assert allowed_flows(net, policies, load) == {("postgresql", 5432), ("redis", 6379)}
    assert not net.allowed(policies, (net.OTHER, net.NS), (net.POSTGRES, net.NS), 5432), "the store still admits its clients only"
    assert not net.allowed(policies, (net.PIPELINE_STEP, net.NS), load, 8080), "nothing calls the load job"
    services = [s for s in objs if s["kind"] == "Service"]
    assert not any(all(load[0].get(k) == v for k, v in s["spec"]["selector"].items()) for s in services), "no Service selects the load pod"


def allowed_flows(net: Any, policies: list[dict[str, Any]], src: tuple[dict[str, str], str]) -> set[tuple[str, int]]:
    """Which of driftloop's peers ``src`` may open a connection to."""
    peers = {"postgresql": (net.POSTGRES, net.NS), "redis": (net.REDIS, net.NS), "mlflow": (net.MLFLOW, net.NS), "feast": (net.FEAST, net.NS),
             "predictor": (net.ISVC, net.NS), "kfp": ({"app": "ml-pipeline"}, "kubeflow"), "api": net.API_SERVER, "internet": net.EXTERNAL}
    ports = (443, 5000, 5432, 6379, 6443, 6566, 8080, 8888)
    return {(name, port) for name, peer in peers.items() for port in ports if net.allowed(policies, src, peer, port)}


def _pod_env(container: dict[str, Any], settings_map: dict[str, str], secret: dict[str, str], workdir: Path) -> dict[str, str]:
    """The environment Kubernetes would give ``container``: ConfigMap envFrom, literals, Secret keys."""
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "LANG": "C.UTF-8"}
    env |= settings_map
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["name"] == SECRET and ref["key"] in secret:
            env[e["name"]] = secret[ref["key"]]
    env |= {"DRIFTLOOP_WORKDIR": str(workdir / "driftloop"), "HOME": str(workdir)}  # the pod's emptyDir
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the feature-load Job's script (churn only) like its pod would, against real PostgreSQL + Redis."""
    if not port_open("127.0.0.1", 6379):
        pytest.fail("Redis is not running on 127.0.0.1:6379 (start it: redis-server --daemonize yes)")
    objs = _objects()
    settings_map = _one(objs, "ConfigMap", "driftloop-settings")["data"]
    project = f"dl_{uuid.uuid4().hex[:10]}"
    with fresh_database("feastjob") as url:
        secret = {"registry_url": url.replace("postgresql://", "postgresql+psycopg2://", 1), "redis_url": "redis://127.0.0.1:6379/0", "offline_url": url}
        settings_map = {**settings_map, "DRIFTLOOP_FEAST_PROJECT": project}
        job = _one(objs, "Job", "feature-load")
        container = _containers(job)[0]
        pod = tmp_path_factory.mktemp("load-pod")
        env = _pod_env(container, settings_map, secret, pod) | {"SCENARIOS": "churn"}
        started = time.monotonic()
        proc = subprocess.run([*container["command"], container["args"][0]], env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield {"objs": objs, "settings_map": settings_map, "secret": secret, "project": project, "url": url,
               "job_output": proc.stdout, "job_seconds": time.monotonic() - started, "tmp": tmp_path_factory}
        from components.features import open_store

        step = Settings(workdir=pod / "driftloop", feast_config="production")
        open_store(step).teardown()  # the project's Redis keys


@pytest.mark.integration
def test_load_job_fills_the_shared_store(cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipeline-step pod with an empty workdir and only the Secret + ConfigMap env sees the
    loaded labels, point-in-time features and online features."""
    import numpy as np
    import psycopg

    from components.data.scenarios import generate
    from components.features import online_features, training_set
    from components.features.config import table_name
    from components.policy import load_policy

    assert "materialized churn" in cluster["job_output"]
    src = generate("churn", seed=0)
    with psycopg.connect(cluster["url"]) as conn:
        for kind in ("features", "labels"):
            assert conn.execute(f"SELECT count(*) FROM {table_name(cluster['project'], 'churn', kind)}").fetchone()[0] == len(src)

    step_pod = cluster["tmp"].mktemp("step-pod")
    env = _pod_env({"env": [{"name": var, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}} for var, key, _ in ENV.values()]},
                   cluster["settings_map"], cluster["secret"], step_pod)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    step = Settings.from_env()
    assert step.feast_config == "production" and str(step.workdir).startswith(str(step_pod))
    policy = load_policy("churn")
    last = pd.Timestamp("2025-12-01", tz="UTC")
    offline = training_set(policy, last, last + pd.DateOffset(months=1), settings=step)
    assert len(offline) == (src.event_timestamp == last).sum()
    ids = sorted(np.random.default_rng(1).choice(offline["customer_id"], size=20, replace=False).tolist())
    online = online_features(policy, ids, settings=step)
    cols = ["customer_id", *policy.features, *policy.categorical_features]
    pd.testing.assert_frame_equal(online[cols], offline.set_index("customer_id").loc[ids].reset_index()[cols], check_dtype=False)
    assert not list(step_pod.rglob("*.parquet")), "the step pod reads everything from the services"


@pytest.mark.integration
def test_feast_server_deployment_serves_the_loaded_features(cluster: dict[str, Any]) -> None:
    """Start the Feast Deployment's container command (without the offline URL, as an
    online-only server may) and read online features over HTTP."""
    from components.data.scenarios import generate

    deployment = _one(cluster["objs"], "Deployment", "feast")
    container = _containers(deployment)[0]
    port = free_port()
    args = [a if a not in ("0.0.0.0", "6566", "2") else {"0.0.0.0": "127.0.0.1", "6566": str(port), "2": "1"}[a] for a in container["args"]]
    pod = cluster["tmp"].mktemp("feast-pod")
    secret = {k: v for k, v in cluster["secret"].items() if k != "offline_url"}
    env = _pod_env(container, cluster["settings_map"], secret, pod)
    log = open(pod / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*container["command"], *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=pod)
    try:
        deadline = time.monotonic() + 120
        while not port_open("127.0.0.1", port):
            assert proc.poll() is None, (pod / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "feast server did not start"
            time.sleep(0.5)
        body = json.dumps({"feature_service": "churn_v1", "entities": {"customer_id": [3, 17]}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/get-online-features", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            got = json.loads(response.read())
        names = got["metadata"]["feature_names"]
        values = dict(zip(names, (r["values"] for r in got["results"]), strict=True))
        src = generate("churn", seed=0)
        last = src[src.event_timestamp == src.event_timestamp.max()].set_index("customer_id")
        assert values["tenure_months"] == [int(last.loc[3, "tenure_months"]), int(last.loc[17, "tenure_months"])]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.unit
def test_feast_server_without_registry_names_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env |= {"PYTHONPATH": str(REPO_ROOT), "DRIFTLOOP_FEAST_CONFIG": "production", "DRIFTLOOP_WORKDIR": str(tmp_path), "DRIFTLOOP_FEAST_REDIS": "r:6379"}
    proc = subprocess.run([sys.executable, "-m", "components.features.serve", "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: DRIFTLOOP_FEAST_REGISTRY_URL is not set, and the production Feast config needs it "
        "(fix: add key registry_url to Secret driftloop-feast (the pods read it as DRIFTLOOP_FEAST_REGISTRY_URL), "
        "e.g. postgresql+psycopg2://USER:PASSWORD@HOST:5432/feast)"]

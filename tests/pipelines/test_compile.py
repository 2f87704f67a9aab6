"""Compiled IR: committed YAML is up to date, the cluster build carries its platform config, local stays plain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import PIPELINES
from pipelines.compile import COMPILED_DIR, compile_pipeline

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _docs(path: Path) -> list[dict]:
    return list(yaml.safe_load_all(path.read_text()))


@pytest.fixture(scope="module")
def cluster_loop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """monitor_and_retrain compiled for the cluster once; each test parses its own copy of the documents."""
    return compile_pipeline("monitor_and_retrain", tmp_path_factory.mktemp("compiled") / "p.yaml", "cluster")


def test_committed_yaml_is_not_stale(tmp_path: Path) -> None:
    # Compile in a fresh process without DRIFTLOOP_IMAGE, as `make compile` does in CI.
    env = {k: v for k, v in os.environ.items() if k != "DRIFTLOOP_IMAGE"}
    subprocess.run([sys.executable, "-m", "driftloop", "compile", "--out", str(tmp_path)], cwd=REPO, env=env, check=True, capture_output=True)
    for name in PIPELINES:
        fresh, committed = tmp_path / f"{name}.yaml", COMPILED_DIR / f"{name}.yaml"
        assert committed.exists(), f"{committed} missing: run `make compile` and commit it"
        assert fresh.read_text() == committed.read_text(), f"{committed} is stale: run `make compile` and commit it"


def test_cluster_build_has_secrets_limits_and_retries(cluster_loop: Path) -> None:
    spec, platform = _docs(cluster_loop)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    train_exec = next(v for k, v in executors.items() if "build-training-data" in k)
    assert {s["secretName"] for s in train_exec["secretAsEnv"]} == {"driftloop-mlflow", "driftloop-feast", "driftloop-ledger", "driftloop-webhook"}
    assert all(s["optional"] for s in train_exec["secretAsEnv"])
    assert train_exec["configMapAsEnv"][0]["configMapName"] == "driftloop-settings"
    containers = {k: v["container"] for k, v in spec["deploymentSpec"]["executors"].items()}
    assert containers["exec-train"]["resources"]["cpuLimit"] == 4.0
    assert all(c["image"] == "ghcr.io/driftloop/driftloop:0.1.0" for c in containers.values())
    assert "pip install" not in yaml.safe_dump(spec)  # install_kfp_package=False: the image has everything


def _tasks(spec: dict) -> dict[str, dict]:
    """Every task in the root DAG and in nested sub-DAGs, by name."""
    out = dict(spec["root"]["dag"]["tasks"])
    for comp in spec["components"].values():
        out.update(comp.get("dag", {}).get("tasks", {}))
    return out


def test_caching_is_off_for_time_dependent_steps_and_retries_on_server_steps(cluster_loop: Path) -> None:
    spec, _ = _docs(cluster_loop)
    tasks = _tasks(spec)
    for name in ("resolve-windows", "get-features-2", "run-monitor", "decide", "build-training-data", "evaluate", "register"):
        assert tasks[name]["cachingOptions"] == {}, name  # enableCache false is serialised as an empty message
    for name in ("get-features", "validate-data", "train"):
        assert tasks[name]["cachingOptions"] == {"enableCache": True}, name
    for name in ("get-features", "decide", "register"):
        assert tasks[name]["retryPolicy"]["maxRetryCount"] == 2, name
    assert "retryPolicy" not in tasks["train"]
    assert "retryPolicy" not in tasks["canary-rollout"]  # a retry would restart the traffic split
    assert tasks["canary-rollout"]["cachingOptions"] == {}


def test_retrain_runs_only_on_a_retrain_decision_registers_every_model_and_canaries_only_a_new_challenger(cluster_loop: Path) -> None:
    spec, _ = _docs(cluster_loop)
    tasks = _tasks(spec)
    # (the exit handler's settle step has a trigger strategy, no condition)
    conditions = [t["triggerPolicy"]["condition"] for t in tasks.values() if "condition" in t.get("triggerPolicy", {})]
    assert "inputs.parameter_values['pipelinechannel--action'] == 'retrain'" in conditions
    assert "inputs.parameter_values['pipelinechannel--register-Output'] == 'challenger'" in conditions
    assert "inputs.parameter_values['pipelinechannel--canary'] != 'none'" in conditions
    assert not any("evaluate-Output" in c for c in conditions), "a gate failure is registered too (with its verdict)"
    assert "triggerPolicy" not in tasks["register"] and tasks["register"]["dependentTasks"] == ["build-training-data", "evaluate", "train"]
    new_challenger = next(t for t in tasks.values() if "register-Output" in t.get("triggerPolicy", {}).get("condition", ""))
    assert new_challenger["dependentTasks"] == ["register"]  # the canary starts only after registration
    assert any("pipelinechannel--canary" in t.get("triggerPolicy", {}).get("condition", "") for t in tasks.values())
    assert spec["root"]["inputDefinitions"]["parameters"]["emergency"]["defaultValue"] is False


def test_local_build_has_no_platform_config(tmp_path: Path) -> None:
    docs = _docs(compile_pipeline("monitor", tmp_path / "p.yaml", "local"))
    assert len(docs) == 1
    assert all("resources" not in e["container"] for e in docs[0]["deploymentSpec"]["executors"].values())


def test_image_is_overridable_by_env() -> None:
    code = "from components.kfp.data import get_features; print(get_features.component_spec.implementation.container.image)"
    env = {**os.environ, "DRIFTLOOP_IMAGE": "registry.local/dl:dev", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    assert out.strip() == "registry.local/dl:dev"


def test_unknown_pipeline_and_target_are_config_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from components.errors import ConfigError
    from driftloop.cli import main
    from pipelines.compile import build_pipeline

    with pytest.raises(ConfigError, match="unknown pipeline 'nope'"):
        build_pipeline("nope")
    with pytest.raises(ConfigError, match="unknown pipeline target 'mars'"):
        build_pipeline("monitor", target="mars")
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "policies" / "churn.yaml").read_text().replace("  - when: [accuracy_floor]", "  - when: [accuracy_flor]"))
    assert main(["compile", "--out", str(tmp_path / "o"), "--policy", str(bad)]) == 2
    assert "accuracy_flor" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["monitor_and_retrain", "rollout"])
def test_cluster_canary_step_mounts_the_prediction_log_and_reads_labels(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Issue 12, defect 4: the Kubernetes canary step had no prediction log and no labels."""
    path = request.getfixturevalue("cluster_loop") if name == "monitor_and_retrain" else compile_pipeline(name, tmp_path / "p.yaml", "cluster")
    spec, platform = _docs(path)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    canary = next(v for k, v in executors.items() if "canary-rollout" in k)
    assert [(m["constant"], m["mountPath"]) for m in canary["pvcMount"]] == [("driftloop-prediction-log", "/var/lib/driftloop/prediction-log")]
    others = [k for k, v in executors.items() if "canary-rollout" not in k and v.get("pvcMount")]
    assert others == [], "only the canary step reads the prediction log"
    text = yaml.safe_dump(spec)
    assert "/var/lib/driftloop/prediction-log" in text and "store" in text  # log_dir and labels parameters of the canary task

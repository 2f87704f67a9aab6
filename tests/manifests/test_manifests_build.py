"""The overlays build with kustomize and say what each environment needs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_checks import MANIFESTS, OVERLAYS, REPO_ROOT, build, name_of

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(name, objects) of each overlay; kustomize runs once per overlay per session (cached)."""
    return request.param, build(MANIFESTS / "overlays" / request.param)


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict[str, Any]]]:
    """Objects of every overlay by name."""
    return {name: build(MANIFESTS / "overlays" / name) for name in OVERLAYS}

POLICY_MODELS = sorted(p.stem for p in (REPO_ROOT / "policies").glob("*.yaml"))
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def _one(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _overlay_kustomization(name: str) -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / "overlays" / name / "kustomization.yaml").read_text())


def test_every_overlay_directory_is_tested() -> None:
    assert sorted(p.name for p in (MANIFESTS / "overlays").iterdir() if p.is_dir()) == sorted(OVERLAYS)


def test_overlay_builds_the_whole_system(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    kinds = {o["kind"] for o in objs}
    assert {"InferenceService", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy", "Deployment", "Service",
            "PrometheusRule", "PodMonitor", "ConfigMap", "Job"} <= kinds
    for name in ("mlflow", "feast", "driftloop-log-sink"):
        _one(objs, "Deployment", name)
        _one(objs, "Service", name)
    assert len({name_of(o) for o in objs}) == len(objs), "duplicate object names"


def test_one_inference_service_per_policy(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    isvcs = {o["metadata"]["name"]: o for o in objs if o["kind"] == "InferenceService"}
    assert sorted(isvcs) == POLICY_MODELS
    for model, isvc in isvcs.items():
        predictor = isvc["spec"]["predictor"]
        args = predictor["containers"][0]["args"]
        assert args[args.index("--model-uri") + 1] == f"models:/{model}@champion"
        assert args[args.index("--model-name") + 1] == model
        assert predictor["logger"]["url"].startswith("http://driftloop-log-sink")
        assert 0 <= predictor["canaryTrafficPercent"] <= 100
        assert isvc["spec"]["transformer"]["containers"][0]["command"][-1] == "serving.transformer"


def test_everything_lands_in_the_overlay_namespace(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, objs = overlay
    namespace = _overlay_kustomization(name)["namespace"]
    for o in objs:
        if o["kind"] not in CLUSTER_SCOPED:
            assert o["metadata"].get("namespace") == namespace, name_of(o)
        for subject in o.get("subjects", []):
            assert subject.get("namespace") == namespace, f"{name_of(o)} binds {subject}"


def test_images_carry_the_overlay_tag_and_the_sync_job_passes_it_on(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, objs = overlay
    tag = _overlay_kustomization(name)["images"][0]["newTag"]
    images = {c["image"] for o in objs for c in _containers(o)}
    assert images == {f"ghcr.io/driftloop/driftloop:{tag}"}
    job = _one(objs, "Job", "driftloop-pipeline-sync")
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DRIFTLOOP_IMAGE"] == container["image"], "pipelines must run on the image Argo CD deployed"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PostSync"


def test_environments_differ_where_they_should(built: dict[str, list[dict[str, Any]]]) -> None:
    dev, prod = built["dev"], built["prod"]
    assert _one(prod, "Deployment", "feast")["spec"]["replicas"] > _one(dev, "Deployment", "feast")["spec"]["replicas"]
    assert _one(prod, "InferenceService", "churn")["spec"]["predictor"]["minReplicas"] > _one(dev, "InferenceService", "churn")["spec"]["predictor"]["minReplicas"]
    dev_settings = _one(dev, "ConfigMap", "driftloop-settings")["data"]
    assert dev_settings["DRIFTLOOP_ROLLOUT_STEPS"] == "50,100"
    assert _one(prod, "ConfigMap", "driftloop-settings")["data"]["DRIFTLOOP_ROLLOUT_STEPS"] == "", "prod uses each policy's steps"
    assert not [o for o in dev if o["kind"] == "ExternalSecret"], "dev secrets are created by hand"
    assert {o["metadata"]["name"] for o in prod if o["kind"] == "ExternalSecret"} == {"driftloop-mlflow", "driftloop-feast"}


def test_names_the_pipelines_use_exist(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    from pipelines import platform

    _, objs = overlay
    _one(objs, "ConfigMap", platform.SETTINGS_CONFIG_MAP)
    _one(objs, "ServiceAccount", platform.SERVICE_ACCOUNT)
    settings = _one(objs, "ConfigMap", platform.SETTINGS_CONFIG_MAP)["data"]
    assert set(platform._SETTINGS_ENV) <= set(settings), "every key the pipelines read is set"


def test_secret_references_are_known(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    """Every secretKeyRef names a secret docs/deploy.md tells you to create, with a key it lists."""
    from pipelines import platform

    _, objs = overlay
    documented = (REPO_ROOT / "docs" / "deploy.md").read_text()
    refs = {(r["name"], r["key"]) for o in objs for r in _secret_key_refs(o)}
    assert {name for name, _ in refs} <= {platform.MLFLOW_SECRET, platform.FEAST_SECRET}
    for name, key in refs:
        assert name in documented and key in documented, f"{name}/{key} is not documented in docs/deploy.md"


def test_argocd_applications_point_at_overlays() -> None:
    objs = build(MANIFESTS / "argocd")
    apps = [o for o in objs if o["kind"] == "Application"]
    assert sorted(a["metadata"]["name"] for a in apps) == [f"driftloop-{o}" for o in sorted(OVERLAYS)]
    project = _one(objs, "AppProject", "driftloop")
    allowed = {(d["namespace"]) for d in project["spec"]["destinations"]}
    for app in apps:
        spec = app["spec"]
        overlay_dir = REPO_ROOT / spec["source"]["path"]
        assert overlay_dir.parent == MANIFESTS / "overlays" and overlay_dir.is_dir()
        assert spec["destination"]["namespace"] == _overlay_kustomization(overlay_dir.name)["namespace"]
        assert spec["destination"]["namespace"] in allowed
        assert spec["project"] == "driftloop"
        assert "RespectIgnoreDifferences=true" in spec["syncPolicy"]["syncOptions"]
        ignored = {p for d in spec["ignoreDifferences"] for p in d["jqPathExpressions"]}
        assert ".spec.predictor.canaryTrafficPercent" in ignored, "Argo CD must not undo the canary controller"
    # the project admits every kind the overlays contain
    whitelist = {(w["group"], w["kind"]) for w in project["spec"]["namespaceResourceWhitelist"]}
    for name in OVERLAYS:
        for o in build(MANIFESTS / "overlays" / name):
            group = o["apiVersion"].rpartition("/")[0]
            assert (group, o["kind"]) in whitelist, f"AppProject driftloop does not allow {group}/{o['kind']}"


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    from manifest_checks import pod_specs

    return [c for _, pod in pod_specs(obj) for c in (*pod.get("initContainers", []), *pod.get("containers", []))]


def _secret_key_refs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    found = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if "secretKeyRef" in x:
                found.append(x["secretKeyRef"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(obj)
    return found


def test_sync_job_commands_match_the_cli() -> None:
    """The PostSync job calls `driftloop compile/submit/schedule` with options those
    commands have, and every compiled pipeline is a name `--pipeline` accepts."""
    from driftloop.commands.pipelines import PIPELINE_NAMES, compile_cmd, schedule, submit

    job = next(o for o in build(MANIFESTS / "base") if o["kind"] == "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = container["args"][0].replace("\\\n", " ")
    for name, command, required in (("compile", compile_cmd, {"--out"}), ("submit", submit, {"--pipeline", "--version-name", "--package"}),
                                    ("schedule", schedule, {"--policy", "--pipeline", "--version-name"})):
        calls = re.findall(rf"driftloop {name} ([^\n]*)", script)
        assert len(calls) == 1, f"expected one `driftloop {name}` in the job"
        flags = {u for u in calls[0].split() if u.startswith("--")}
        options = {o for p in command.params for o in p.opts}
        assert required <= flags and flags <= options, f"driftloop {name}: unknown {flags - options} or missing {required - flags}"
    compiled = sorted(p.stem for p in (REPO_ROOT / "pipelines" / "compiled").glob("*.yaml"))
    assert set(compiled) <= set(PIPELINE_NAMES), compiled
    envs = {e["name"] for e in container["env"]}
    host_option = next(p for p in submit.params if p.name == "host")
    assert {host_option.envvar, "DRIFTLOOP_IMAGE", "POD_NAMESPACE"} <= envs, "the job must tell the CLI where KFP is, which image and namespace"
    # the recurring run's --param names are inputs of the scheduled pipeline
    ir = next(yaml.safe_load_all((REPO_ROOT / "pipelines" / "compiled" / "monitor_and_retrain.yaml").read_text()))
    params = set(ir["root"]["inputDefinitions"]["parameters"])
    passed = {m.split("=")[0] for m in re.findall(r"--param (\S+)", script)}
    assert passed and passed <= params, f"{passed - params} are not parameters of monitor_and_retrain"


def test_sync_job_script_runs(tmp_path: Path) -> None:
    """Run the job's shell script with a stand-in `driftloop` that logs its calls: one
    compile, one upload per compiled pipeline, one schedule per policy, all with the same
    version named after the image tag."""
    job = next(o for o in build(MANIFESTS / "overlays" / "dev") if o["kind"] == "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    policies, compiled, bin_dir = tmp_path / "policies", tmp_path / "compiled", tmp_path / "bin"
    for d in (policies, compiled, bin_dir):
        d.mkdir()
    for model in ("churn", "fraud"):
        (policies / f"{model}.yaml").write_text(f"model: {model}\n")
    stub = bin_dir / "driftloop"
    stub.write_text(
        '#!/bin/sh\necho "$@" >> "$CALLS"\n'
        f'if [ "$1" = compile ]; then touch {compiled}/train.yaml {compiled}/monitor.yaml; fi\n'
    )
    stub.chmod(0o755)
    script = container["args"][0].replace("/etc/driftloop/policies", str(policies)).replace("/tmp/driftloop/compiled", str(compiled))
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env |= {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls"), "POD_NAMESPACE": "driftloop-dev"}
    subprocess.run([*container["command"], script], env=env, check=True, timeout=30)
    calls = [line.split() for line in (tmp_path / "calls").read_text().splitlines()]
    assert [c[0] for c in calls] == ["compile", "submit", "submit", "schedule", "schedule"]
    versions = {c[c.index("--version-name") + 1] for c in calls[1:]}
    assert len(versions) == 1 and versions.pop().startswith("0.1.0-dev-")
    assert sorted(c[c.index("--pipeline") + 1] for c in calls[1:3]) == ["monitor", "train"]
    assert sorted(Path(c[c.index("--policy") + 1]).stem for c in calls[3:]) == ["churn", "fraud"]
    # recurring runs roll out in the namespace the manifests deployed the models to
    assert all(c[c.index("--param") + 1] == "namespace=driftloop-dev" for c in calls[3:])

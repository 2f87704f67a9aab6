"""Security rules every environment keeps: least-privilege RBAC without wildcards, no
secret values in git, hardened pods, pinned images. Each checker is shown to catch a
deliberately broken object, so a clean result means something."""

from __future__ import annotations

from typing import Any

import pytest
from manifest_checks import (
    MANIFESTS,
    OVERLAYS,
    REPO_ROOT,
    build,
    image_problems,
    name_of,
    pod_specs,
    security_problems,
    with_change,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(name, objects) of each overlay; kustomize runs once per overlay per session (cached)."""
    return request.param, build(MANIFESTS / "overlays" / request.param)


def test_no_security_problems(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    problems = [p for o in objs for p in security_problems(o)]
    assert problems == []


def test_every_workload_is_checked(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    checked = {where for o in objs for where, _ in pod_specs(o)}
    workloads = {name_of(o) for o in objs if o["kind"] in {"Deployment", "Job", "CronJob", "StatefulSet", "DaemonSet"}}
    assert workloads and workloads <= checked
    assert {f"InferenceService/{m}.{c}" for m in ("churn", "fraud") for c in ("predictor", "transformer")} <= checked


def test_no_secret_objects_in_the_manifests(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    assert [name_of(o) for o in objs if o["kind"] == "Secret"] == []


def test_no_credentials_in_manifest_files() -> None:
    """No password-looking literals anywhere under manifests/ (URIs with user:password@)."""
    import re

    userinfo = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
    for path in MANIFESTS.rglob("*.yaml"):
        assert not userinfo.search(path.read_text()), f"{path.relative_to(REPO_ROOT)} embeds credentials in a URL"


# Every grant driftloop's Roles hold: (role, apiGroup, resource, verb, resourceNames). A
# new verb or resource fails this test until it is listed here and in docs/security.md.
ISVC_NAMES = ("churn", "concept", "credit", "fraud", "recsys")
RBAC_ALLOWANCE = {
    *(("driftloop-canary", "serving.kserve.io", "inferenceservices", v, ()) for v in ("get", "list", "watch")),
    ("driftloop-canary", "serving.kserve.io", "inferenceservices", "patch", ISVC_NAMES),
    *(("driftloop-pipeline-runtime", "", "pods", v, ()) for v in ("get", "watch")),
    ("driftloop-pipeline-runtime", "", "configmaps", "get", ("driftloop-settings", "kfp-launcher", "metadata-grpc-configmap")),
    ("driftloop-pipeline-runtime", "", "secrets", "get", ("mlpipeline-minio-artifact",)),
    *(("driftloop-pipeline-runtime", "argoproj.io", "workflowtaskresults", v, ()) for v in ("create", "patch")),
    *(("driftloop-pipeline-runtime", "pipelines.kubeflow.org", r, v, ()) for r in ("pipelines", "pipelines/versions", "experiments")
      for v in ("get", "list")),
    *(("driftloop-pipeline-runtime", "pipelines.kubeflow.org", "runs", v, ()) for v in ("get", "list", "create")),
    *(("driftloop-pipeline-sync", "pipelines.kubeflow.org", r, v, ()) for r in ("pipelines", "pipelines/versions", "experiments")
      for v in ("get", "list", "create")),
    *(("driftloop-pipeline-sync", "pipelines.kubeflow.org", "jobs", v, ()) for v in ("get", "list", "create", "delete", "enable", "disable")),
}


def _grants(objs: list[dict[str, Any]]) -> set[tuple[str, str, str, str, tuple[str, ...]]]:
    return {(o["metadata"]["name"], g, res, v, tuple(sorted(r.get("resourceNames", []))))
            for o in objs if o["kind"] == "Role" for r in o["rules"] for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]}


def test_rbac_is_exactly_the_allowance(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    grants = _grants(overlay[1])
    assert grants - RBAC_ALLOWANCE == set(), "grants beyond the allowance"
    assert RBAC_ALLOWANCE - grants == set(), "allowance entries no Role grants (remove them)"


def test_patch_is_limited_to_driftloops_inference_services(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    served = tuple(sorted(o["metadata"]["name"] for o in objs if o["kind"] == "InferenceService"))
    assert served == ISVC_NAMES, "a new InferenceService needs its name in driftloop-canary's patch rule"
    grants = _grants(objs)
    assert not {g for g in grants if g[2] == "pods" and g[3] in {"patch", "update", "create", "delete"}}, "steps must not relabel pods"
    assert not {g for g in grants if g[2] == "services" and g[3] not in {"get", "list", "watch"}}, "Services are read only"
    patches = {g for g in grants if g[2] == "inferenceservices" and g[3] == "patch"}
    assert patches and all(g[4] == ISVC_NAMES for g in patches)


def test_serving_pods_get_no_api_permissions(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    granted = {v for o in objs if o["kind"] == "Role" for r in o["rules"] for g in r["apiGroups"] for v in r["verbs"]
               if v in {"deletecollection", "escalate", "bind", "impersonate"} or (v == "delete" and g != "pipelines.kubeflow.org")}
    assert not granted
    # secrets only by name, never list/watch
    for o in objs:
        for r in o.get("rules", []) if o["kind"] == "Role" else []:
            if "secrets" in r["resources"]:
                assert r.get("resourceNames") and set(r["verbs"]) <= {"get"}, r
    bindings = [o for o in objs if o["kind"] == "RoleBinding"]
    assert [b for b in bindings if any(s["name"] == "driftloop-serving" for s in b["subjects"])] == []


def _bad(kind: str, path: str, value: Any) -> list[str]:
    obj = next(o for o in build(MANIFESTS / "overlays" / "prod") if o["kind"] == kind)
    return security_problems(with_change(obj, path, value))


@pytest.mark.parametrize(
    ("kind", "path", "value", "expected"),
    [
        ("Role", "rules.0.verbs", ["*"], "wildcard"),
        ("Role", "rules.0.resources", ["*"], "wildcard"),
        ("Role", "rules.0.resources", ["pods/*"], "subresource wildcard"),
        ("Deployment", "spec.template.spec.securityContext.runAsNonRoot", False, "runAsNonRoot"),
        ("Deployment", "spec.template.spec.securityContext.runAsUser", 0, "root"),
        ("Deployment", "spec.template.spec.containers.0.securityContext.allowPrivilegeEscalation", True, "allowPrivilegeEscalation"),
        ("Deployment", "spec.template.spec.containers.0.securityContext.readOnlyRootFilesystem", False, "readOnlyRootFilesystem"),
        ("Deployment", "spec.template.spec.containers.0.securityContext.capabilities", {"add": ["NET_ADMIN"]}, "capabilities"),
        ("Deployment", "spec.template.spec.containers.0.image", "ghcr.io/driftloop/driftloop:latest", ":latest"),
        ("Job", "spec.template.spec.hostNetwork", True, "host namespace"),
        ("InferenceService", "spec.transformer.containers.0.securityContext", {}, "allowPrivilegeEscalation"),
        ("InferenceService", "spec.predictor.securityContext", {}, "runAsNonRoot"),
    ],
)
def test_checker_catches_each_weakness(kind: str, path: str, value: Any, expected: str) -> None:
    problems = _bad(kind, path, value)
    assert any(expected in p for p in problems), problems


def test_checker_catches_plaintext_secrets_and_cluster_roles() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "hunter2"}}
    assert security_problems(secret)
    assert security_problems({**secret, "stringData": {}}) == []  # an empty shell holds no value
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "x"}, "rules": []}
    assert security_problems(role)


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("ghcr.io/driftloop/driftloop:0.1.0", True),
        ("python:3.11.14-slim-bookworm", True),
        ("localhost:5000/driftloop@sha256:" + "a" * 64, True),
        ("ghcr.io/driftloop/driftloop", False),
        ("localhost:5000/driftloop", False),
        ("ghcr.io/driftloop/driftloop:latest", False),
    ],
)
def test_image_pinning(image: str, ok: bool) -> None:
    assert (image_problems(image) == []) is ok

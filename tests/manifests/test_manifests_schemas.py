"""Every built object validates: built-in kinds with kubernetes-validate (strict, unknown
fields fail), the InferenceService against KServe's CRD schema, the other custom resources
structurally. Each validator is also shown to reject a broken object."""

from __future__ import annotations

from typing import Any

import pytest
from manifest_checks import (
    CORE_GROUPS,
    MANIFESTS,
    OVERLAYS,
    build,
    core_errors,
    isvc_errors,
    name_of,
    with_change,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(name, objects) of each overlay; kustomize runs once per overlay per session (cached)."""
    return request.param, build(MANIFESTS / "overlays" / request.param)

# custom resources other than the InferenceService: apiVersion -> required spec paths
STRUCTURAL: dict[tuple[str, str], tuple[str, ...]] = {
    ("monitoring.coreos.com/v1", "PrometheusRule"): ("spec.groups",),
    ("monitoring.coreos.com/v1", "PodMonitor"): ("spec.selector", "spec.podMetricsEndpoints"),
    ("external-secrets.io/v1", "ExternalSecret"): ("spec.secretStoreRef.name", "spec.target.name", "spec.data"),
    ("argoproj.io/v1alpha1", "Application"): ("spec.project", "spec.source.repoURL", "spec.source.path",
                                              "spec.source.targetRevision", "spec.destination.server",
                                              "spec.destination.namespace"),
    ("argoproj.io/v1alpha1", "AppProject"): ("spec.sourceRepos", "spec.destinations"),
}


def _get(obj: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        obj = obj[key]
    return obj


def test_every_object_has_a_validator(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    for o in [*objs, *build(MANIFESTS / "argocd")]:
        known = o["apiVersion"] in CORE_GROUPS or o["kind"] == "InferenceService" or (o["apiVersion"], o["kind"]) in STRUCTURAL
        assert known, f"{name_of(o)} ({o['apiVersion']}) is not validated by any test"


def test_builtin_kinds_validate(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    problems = {name_of(o): core_errors(o) for o in objs if o["apiVersion"] in CORE_GROUPS}
    assert problems and not {k: v for k, v in problems.items() if v}


def test_inference_services_validate_against_the_crd(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    isvcs = [o for o in objs if o["kind"] == "InferenceService"]
    assert isvcs
    for o in isvcs:
        assert isvc_errors(o) == [], name_of(o)


def test_custom_resources_are_structurally_complete(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    for o in [*objs, *build(MANIFESTS / "argocd")]:
        for path in STRUCTURAL.get((o["apiVersion"], o["kind"]), ()):
            assert _get(o, path), f"{name_of(o)}: {path} is empty"
        if o["kind"] == "PrometheusRule":
            for group in o["spec"]["groups"]:
                assert group["name"] and group["rules"]
                for rule in group["rules"]:
                    assert rule["expr"] and ("alert" in rule) != ("record" in rule), rule


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.predictor.canaryTraficPercent", 10, "canaryTraficPercent"),  # misspelt field
        ("spec.predictor.canaryTrafficPercent", "ten", "canaryTrafficPercent"),  # wrong type
        ("spec.predictor.logger.mode", "everything", "everything"),  # not in the enum
        ("spec.predictor.containers.0.resources.limits.cpu", 1, None),  # int-or-string: accepted
    ],
)
def test_crd_validation_rejects_broken_inference_services(path: str, value: Any, expected: str | None) -> None:
    isvc = next(o for o in build(MANIFESTS / "overlays" / "dev") if o["kind"] == "InferenceService")
    errors = isvc_errors(with_change(isvc, path, value))
    if expected is None:
        assert errors == []
    else:
        assert errors and any(expected in e for e in errors), errors


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("Deployment", "spec.replica", 2),  # misspelt field
        ("Deployment", "spec.replicas", "two"),  # wrong type
        ("NetworkPolicy", "spec.policyTypes", "Ingress"),  # a string where a list belongs
    ],
)
def test_kubernetes_validate_rejects_broken_objects(kind: str, path: str, value: Any) -> None:
    obj = next(o for o in build(MANIFESTS / "overlays" / "dev") if o["kind"] == kind)
    assert core_errors(with_change(obj, path, value))


def test_a_missing_crd_schema_fails_with_its_expected_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import manifest_checks

    monkeypatch.setattr(manifest_checks, "ISVC_CRD", tmp_path / "shared" / "schemas" / "missing.yaml")
    with pytest.raises(FileNotFoundError, match=r"shared/schemas"):
        manifest_checks.isvc_validator.__wrapped__()

"""The cohort-routing component (manifests/cohorts/recsys-casual) enabled in the dev overlay: the
InferenceGraph validates strictly against KServe's InferenceGraph CRD (unknown fields fail), its
Switch sends the casual cohort to the specialist's InferenceService and the rest to the global
champion, the specialist loads the cohort's alias, and everything it adds is hardened like the rest."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_checks import (
    MANIFESTS,
    SCHEMAS,
    build,
    core_errors,
    isvc_errors,
    security_problems,
    strict_openapi,
    with_change,
)

from serving.cohort_graph import inference_graph

pytestmark = pytest.mark.unit

COMPONENT = MANIFESTS / "cohorts" / "recsys-casual"
IG_CRD = SCHEMAS / "serving.kserve.io_inferencegraphs.yaml"


@functools.cache
def ig_validator() -> Any:
    """A jsonschema validator for serving.kserve.io/v1alpha1 InferenceGraph (strict: unknown fields fail)."""
    import jsonschema

    crd = next(d for d in yaml.safe_load_all(IG_CRD.read_text()) if d)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    schema = strict_openapi(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def ig_errors(obj: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in ig_validator().iter_errors(obj)]


@pytest.fixture(scope="module")
def objs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The dev overlay with the component listed under ``components:`` (as an overlay enables it)."""
    root = tmp_path_factory.mktemp("dev-cohorts")
    overlay = yaml.safe_load((MANIFESTS / "overlays" / "dev" / "kustomization.yaml").read_text())
    overlay["resources"] = [os.path.relpath(MANIFESTS / "base", root)]
    overlay["components"] = [os.path.relpath(COMPONENT, root)]
    (root / "kustomization.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    return build(Path(root))


def _one(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_the_graph_validates_strictly_and_a_broken_one_does_not(objs: list[dict[str, Any]]) -> None:
    graph = _one(objs, "InferenceGraph", "recsys-cohorts")
    assert ig_errors(graph) == []
    assert any("routerTyp" in e for e in ig_errors(with_change(graph, "spec.nodes.root.routerTyp", "Switch")))  # misspelt
    assert any("Router" in e for e in ig_errors(with_change(graph, "spec.nodes.root.routerType", "Router")))  # not in the enum
    assert any("servicName" in e for e in ig_errors(with_change(graph, "spec.nodes.root.steps.0.servicName", "x")))
    assert ig_errors(with_change(graph, "spec.nodes", None))  # nodes is required


def test_the_switch_routes_the_casual_cohort_to_its_specialist_and_the_rest_to_the_global_champion(objs: list[dict[str, Any]]) -> None:
    graph = _one(objs, "InferenceGraph", "recsys-cohorts")
    assert graph["metadata"]["namespace"] == "driftloop-dev"
    expected = inference_graph("recsys", "user_cohort", ["casual"])
    assert graph["spec"] == expected["spec"]  # the committed manifest is what serving.cohort_graph renders
    steps = graph["spec"]["nodes"]["root"]["steps"]
    assert graph["spec"]["nodes"]["root"]["routerType"] == "Switch" and steps[-1]["serviceName"] == "recsys"
    isvcs = {o["metadata"]["name"]: o for o in objs if o["kind"] == "InferenceService"}
    assert {s["serviceName"] for s in steps} <= set(isvcs), "every step targets a deployed InferenceService"


def test_the_specialist_serves_the_cohorts_alias_and_is_hardened_like_the_others(objs: list[dict[str, Any]]) -> None:
    from serving.predictor import build_parser

    specialist, base = _one(objs, "InferenceService", "recsys-casual"), _one(objs, "InferenceService", "recsys")
    assert isvc_errors(specialist) == [] and security_problems(specialist) == []
    args = build_parser().parse_args(specialist["spec"]["predictor"]["containers"][0]["args"])
    assert (args.model_uri, args.model_name, args.policy) == ("models:/recsys@champion-casual", "recsys-casual", "recsys")
    for part in ("predictor", "transformer"):  # the dev overlay's patches and image tag reach the component too
        assert specialist["spec"][part]["maxReplicas"] == base["spec"][part]["maxReplicas"] == 1
        assert specialist["spec"][part]["containers"][0]["image"] == base["spec"][part]["containers"][0]["image"]
    role = _one(objs, "Role", "driftloop-canary")
    patchable = next(r["resourceNames"] for r in role["rules"] if r["verbs"] == ["patch"])
    assert "recsys-casual" in patchable and "recsys" in patchable  # a cohort canary may patch the specialist, nothing more
    policy = _one(objs, "NetworkPolicy", "inferencegraphs")
    assert core_errors(policy) == [] and policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_retiring_the_specialist_removes_its_route() -> None:
    kept = inference_graph("recsys", "user_cohort", ["casual", "new"])["spec"]["nodes"]["root"]["steps"]
    retired = inference_graph("recsys", "user_cohort", ["new"])["spec"]["nodes"]["root"]["steps"]
    assert [s["name"] for s in kept] == ["casual", "new", "global"] and [s["name"] for s in retired] == ["new", "global"]
    assert ig_errors(inference_graph("recsys", "user_cohort", [])) == []

"""The policies ConfigMap carries exactly policies/*.yaml.

kustomize cannot read above manifests/, so manifests/base/policies/ holds copies; these
tests fail as soon as a copy, the generator's file list or the built ConfigMap drift
from policies/. Fix: cp policies/*.yaml manifests/base/policies/ and list new files in
manifests/base/kustomization.yaml.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from manifest_checks import MANIFESTS, OVERLAYS, REPO_ROOT, build

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(name, objects) of each overlay; kustomize runs once per overlay per session (cached)."""
    return request.param, build(MANIFESTS / "overlays" / request.param)

SOURCE = REPO_ROOT / "policies"
COPIES = MANIFESTS / "base" / "policies"
FIX = "run: cp policies/*.yaml manifests/base/policies/ (and list new files under driftloop-policies in manifests/base/kustomization.yaml)"


def test_copies_are_identical_to_policies() -> None:
    source = {p.name: p.read_text() for p in SOURCE.glob("*.yaml")}
    copies = {p.name: p.read_text() for p in COPIES.glob("*.yaml")}
    assert sorted(copies) == sorted(source), FIX
    stale = [name for name in source if copies[name] != source[name]]
    assert not stale, f"stale copies {stale}; {FIX}"


def test_generator_lists_every_policy() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "base" / "kustomization.yaml").read_text())
    generator = next(g for g in kustomization["configMapGenerator"] if g["name"] == "driftloop-policies")
    assert sorted(generator["files"]) == sorted(f"policies/{p.name}" for p in SOURCE.glob("*.yaml")), FIX


def test_built_config_map_holds_every_policy_verbatim(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    (cm,) = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("driftloop-policies-")]
    assert cm["data"] == {p.name: p.read_text() for p in SOURCE.glob("*.yaml")}
    # the hash suffix changes with the content, so pods that mount it restart on a policy change
    job = next(o for o in objs if o["kind"] == "Job")
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["policies"]["configMap"]["name"] == cm["metadata"]["name"]


def test_every_policy_in_the_config_map_is_valid(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    from components.policy import policy_from_dict

    _, objs = overlay
    (cm,) = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("driftloop-policies-")]
    for key, text in cm["data"].items():
        policy = policy_from_dict(yaml.safe_load(text), source=key)
        assert policy.model == key.removesuffix(".yaml")
        assert policy.schedule, f"{key}: the PostSync job needs a schedule to create the recurring run"

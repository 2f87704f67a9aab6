"""Settings read from the pod environment: the dev overlay's rollout overrides reach the policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.errors import ConfigError
from components.settings import Settings

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def _overlay_env(overlay: str) -> dict[str, str]:
    """The driftloop-settings literals a kustomize overlay sets (what its pods get as env)."""
    kustomization = yaml.safe_load((REPO / "manifests" / "overlays" / overlay / "kustomization.yaml").read_text())
    env: dict[str, str] = {}
    for gen in kustomization.get("configMapGenerator", []):
        for literal in gen.get("literals", []):
            key, _, value = literal.partition("=")
            env[key] = value
    return env


def test_dev_overlay_rollout_overrides_are_read() -> None:
    env = _overlay_env("dev")
    assert env["DRIFTLOOP_ROLLOUT_STEPS"], "the dev overlay is expected to shorten the rollout"
    overrides = Settings.from_env(env).rollout_overrides()
    assert overrides["steps"] == [int(s) for s in env["DRIFTLOOP_ROLLOUT_STEPS"].split(",")]
    assert overrides["interval_seconds"] == float(env["DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS"])


def test_prod_overlay_empty_values_keep_the_policy() -> None:
    assert Settings.from_env(_overlay_env("prod")).rollout_overrides() == {}


@pytest.mark.parametrize(("name", "value"), [("DRIFTLOOP_ROLLOUT_STEPS", "50,20,100"), ("DRIFTLOOP_ROLLOUT_STEPS", "10,50"),
                                             ("DRIFTLOOP_ROLLOUT_STEPS", "ten"), ("DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS", "-1"),
                                             ("DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS", "soon")])
def test_bad_override_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: value})
    assert name in str(err.value) and err.value.fix

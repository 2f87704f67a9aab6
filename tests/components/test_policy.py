"""The policy schema: every seed policy loads; mistakes fail on load naming the YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.errors import ConfigError
from components.policy import load_policy, parse_window, policy_from_dict
from components.settings import POLICY_DIR

pytestmark = pytest.mark.unit
SEEDS = ["churn", "credit", "fraud", "recsys", "concept"]


@pytest.mark.parametrize("name", SEEDS)
def test_seed_policies_load(name: str) -> None:
    policy = load_policy(name)
    assert policy.model == name
    assert policy.actions, "every seed policy says what to do"


def _raw(name: str = "churn") -> dict:
    return yaml.safe_load((POLICY_DIR / f"{name}.yaml").read_text())


def test_unknown_key_is_rejected_with_its_path() -> None:
    raw = _raw()
    raw["monitors"][0]["thresold"] = 0.9
    with pytest.raises(ConfigError, match=r"monitors\.0\.thresold: unknown key"):
        policy_from_dict(raw)


def test_unknown_monitor_type_lists_the_known_ones() -> None:
    raw = _raw()
    raw["monitors"][0]["type"] = "vibes"
    with pytest.raises(ConfigError, match="unknown monitor type; use one of feature_drift"):
        policy_from_dict(raw)


def test_action_naming_unknown_monitor_fails() -> None:
    raw = _raw()
    raw["actions"][0]["when"] = ["acuracy_floor"]
    with pytest.raises(ConfigError, match=r"actions\[0\]\.when names unknown monitors \['acuracy_floor'\]"):
        policy_from_dict(raw)


def test_segment_must_be_declared() -> None:
    raw = _raw("credit")
    raw["monitors"][0]["segment"] = "nearprime"
    with pytest.raises(ConfigError, match="not one of segments.values"):
        policy_from_dict(raw)


@pytest.mark.parametrize(
    ("steps", "message"),
    [([10, 5, 100], "strictly increase"), ([10, 50], "last step must be 100"), ([0, 100], "1..100"), ([], "at least one step")],
)
def test_impossible_rollout_steps(steps: list[int], message: str) -> None:
    raw = _raw()
    raw["rollout"]["steps"] = steps
    with pytest.raises(ConfigError, match=message):
        policy_from_dict(raw)


def test_performance_monitor_needs_a_threshold() -> None:
    raw = _raw()
    del raw["monitors"][0]["min"]
    with pytest.raises(ConfigError, match="set at least one of min, max or max_relative_drop"):
        policy_from_dict(raw)


def test_bad_window() -> None:
    assert parse_window("48h") == (48, "hours")
    with pytest.raises(ValueError, match="positive count"):
        parse_window("7x")


def test_missing_file_names_known_policies(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="churn, concept, credit, fraud, recsys"):
        load_policy(tmp_path / "nope.yaml")


def test_policy_is_frozen() -> None:
    policy = load_policy("churn")
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError
        policy.model = "other"  # type: ignore[misc]

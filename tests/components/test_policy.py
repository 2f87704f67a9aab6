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


def test_monitor_types_are_the_runners() -> None:
    """Each monitor type has one runner and one policy schema, and the error lists them."""
    from typing import get_args

    from components.monitor.runners import RUNNERS
    from components.policy import MONITOR_TYPES, Monitor

    schemas = [get_args(c.model_fields["type"].annotation)[0] for c in get_args(get_args(Monitor)[0])]
    assert sorted(schemas) == sorted(RUNNERS) == sorted(MONITOR_TYPES)


@pytest.mark.parametrize(
    ("monitor", "key", "value", "message"),
    [
        ("feature_drift", "numeric_test", "anderson", r"numeric_test: unknown drift test 'anderson' \(fix: use one of ks, cvm for numeric columns\)"),
        ("feature_drift", "numeric_test", "chi2", r"'chi2' does not accept numeric columns \(fix: use one of ks, cvm for numeric"),
        ("feature_drift", "categorical_test", "psi", r"'psi' gives a distance, not a p-value \(fix: use one of chi2, fet for categorical"),
        ("label_drift", "test", "ks", r"test: drift test 'ks' does not accept categorical columns \(fix: use one of chi2, fet"),
        ("prediction_drift", "test", "fet", r"test: drift test 'fet' does not accept numeric columns"),
        ("concept_drift", "detector", "kswin", r"detector: unknown concept-drift detector 'kswin'; use one of fet_online, cvm_online, adwin, page_hinkley"),
        ("performance", "metric", "f1", r"metric: unknown metric 'f1'; use one of accuracy, precision"),
    ],
)
def test_vocabularies_are_validated_against_their_registries(monitor: str, key: str, value: str, message: str) -> None:
    raw = _raw()
    raw["monitors"] = [{"name": "m", "type": monitor, key: value} | ({"min": 0.5} if monitor == "performance" else {})]
    raw["actions"] = [{"when": ["m"]}]
    with pytest.raises(ConfigError, match=message):
        policy_from_dict(raw)
    raw["monitors"][0][key] = "auc" if monitor == "performance" else {"detector": "adwin", "test": "ks" if monitor == "prediction_drift" else "chi2"}.get(key, "ks" if key == "numeric_test" else "chi2")
    assert policy_from_dict(raw).monitors[0].type == monitor


def test_false_alarm_budget_defaults_split_the_policy_rate() -> None:
    from components.monitor.budget import (
        POLICY_FALSE_ALARM_RATE,
        monitor_false_alarm_rate,
        p_value_for,
    )

    policy = policy_from_dict(_raw("concept"))
    shares = [monitor_false_alarm_rate(policy, m) for m in policy.monitors]
    assert sum(shares) == pytest.approx(POLICY_FALSE_ALARM_RATE)
    concept = next(m for m in policy.monitors if m.type == "concept_drift")
    assert concept.ert is None and concept.ph_threshold is None  # derived at run time
    raw = _raw()
    raw["monitors"][1].pop("p_value", None)
    raw["monitors"][1]["false_alarm_rate"] = 0.02
    fd = policy_from_dict(raw).monitors[1]
    assert p_value_for(policy_from_dict(raw), fd) == 0.02
    raw["monitors"][1]["false_alarm_rate"] = 1.5
    with pytest.raises(ConfigError, match=r"monitors\.1\.false_alarm_rate"):
        policy_from_dict(raw)

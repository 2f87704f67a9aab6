"""rollout.label_delay and its companions: validated with one-line errors; absent, nothing changes."""

from __future__ import annotations

import pytest

from components.errors import ConfigError
from components.policy import load_policy, policy_from_dict

pytestmark = pytest.mark.unit


def with_rollout(**changes: object) -> dict:
    raw = load_policy("churn").model_dump(mode="json", exclude_none=True)
    base = {k: v for k, v in raw["rollout"].items() if k not in ("label_delay", "max_label_wait")}  # churn's, without its delay
    raw["rollout"] = {k: v for k, v in {**base, **changes}.items() if v is not None}
    return raw


@pytest.mark.parametrize(("changes", "needle"), [
    ({"min_labelled": 50}, "rollout: min_labelled only apply with label_delay; set label_delay"),
    ({"max_label_wait": "1d"}, "max_label_wait only apply with label_delay"),
    ({"label_delay": "6 hours"}, "rollout.label_delay: window '6 hours' must be a positive count and a unit h, d, w or M"),
    ({"label_delay": "6h", "labelled_fraction": 0}, "rollout.labelled_fraction: Input should be greater than 0"),
    ({"label_delay": "6h", "checks": [{"metric": "error_rate", "max": 0.01}]}, "label_delay is set but no check needs labels"),
])
def test_bad_label_delay_settings_are_one_line_errors(changes: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        policy_from_dict(with_rollout(**changes))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_seed_policies_wait_for_labels_and_a_dump_round_trips() -> None:
    fraud, churn = load_policy("fraud").rollout, load_policy("churn").rollout
    assert fraud.label_wait_seconds == 6 * 3600
    assert churn.label_delay == "1M" and churn.label_wait_seconds == 86400  # a month of labels, a day's wait per step
    plain = policy_from_dict(with_rollout()).rollout
    assert plain.label_wait_seconds is None and plain.labelled_fraction is None
    again = policy_from_dict(load_policy("fraud").model_dump(mode="json")).rollout  # None fields dumped as null
    assert again == fraud

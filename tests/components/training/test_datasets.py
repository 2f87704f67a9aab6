"""Training sets by strategy: windows, delayed labels, cohorts, the emergency guard, the time split."""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from components.errors import ConfigError, DataError
from components.policy import Policy
from components.training.datasets import build_training_set
from tests.components.training.training_synth import frame, frame_factory, policy, policy_factory  # noqa: F401  (fixtures)

pytestmark = pytest.mark.unit

END = pd.Timestamp("2025-02-01", tz="UTC")


def _labelled_by(frame: pd.DataFrame, end: pd.Timestamp, start: pd.Timestamp | None = None) -> pd.DataFrame:
    ok = (frame["event_timestamp"] <= end) & (frame["label_timestamp"] <= end)
    if start is not None:
        ok &= frame["event_timestamp"] > start
    return frame[ok]


def test_full_uses_all_labelled_history_and_holdout_is_later(policy: Policy, frame: pd.DataFrame) -> None:
    data = build_training_set(policy, "full", END, source=frame)
    expected = _labelled_by(frame, END)
    assert len(data.train) + len(data.holdout) == len(expected)
    # the labels of the last two hours before END are not known at END
    assert len(expected) == int((frame["event_timestamp"] <= END).sum()) - 2
    assert data.train["event_timestamp"].max() < data.holdout["event_timestamp"].min()
    assert len(data.holdout) / len(expected) == pytest.approx(policy.trainer.holdout, abs=0.01)
    assert data.window_start == frame["event_timestamp"].min()
    assert data.window_end == END
    assert data.weights is None and data.cohort is None and data.strategy == "full"


def test_naive_end_and_timestamps_are_read_as_utc(policy: Policy, frame: pd.DataFrame) -> None:
    naive = frame.assign(event_timestamp=frame["event_timestamp"].dt.tz_localize(None), label_timestamp=frame["label_timestamp"].dt.tz_localize(None))
    a = build_training_set(policy, "full", "2025-02-01T00:00:00", source=naive)
    b = build_training_set(policy, "full", END, source=frame)
    assert a.window_end == b.window_end and len(a.train) == len(b.train) and len(a.holdout) == len(b.holdout)


def test_recent_window_keeps_only_the_window(policy: Policy, frame: pd.DataFrame) -> None:
    data = build_training_set(policy, "recent_window", END, window="5d", source=frame)
    start = END - pd.Timedelta(days=5)
    assert data.window_start == start
    rows = pd.concat([data.train, data.holdout])
    assert rows["event_timestamp"].min() > start
    assert len(rows) == len(_labelled_by(frame, END, start))
    # without --window the policy's recent_window action gives 10d
    default = build_training_set(policy, "recent_window", END, source=frame)
    assert default.window_start == END - pd.Timedelta(days=10)


def test_month_windows_use_calendar_months(policy: Policy, frame_factory: Callable[..., pd.DataFrame]) -> None:
    daily = frame_factory(rows=400, freq="D")
    end = pd.Timestamp("2025-12-31", tz="UTC")
    data = build_training_set(policy, "recent_window", end, window="3M", source=daily)
    assert data.window_start == pd.Timestamp("2025-09-30", tz="UTC")
    assert pd.concat([data.train, data.holdout])["event_timestamp"].min() == pd.Timestamp("2025-10-01", tz="UTC")


def test_cohort_filters_to_one_cohort(policy_factory: Callable[..., Policy], frame: pd.DataFrame) -> None:
    policy = policy_factory(actions=[])
    data = build_training_set(policy, "cohort", END, cohort="subprime", source=frame)
    rows = pd.concat([data.train, data.holdout])
    assert set(rows["segment"]) == {"subprime"}
    assert len(rows) == int((_labelled_by(frame, END)["segment"] == "subprime").sum())
    assert data.cohort == "subprime" and data.weights is None


def test_cohort_upweights_instead_of_filtering(policy: Policy, frame: pd.DataFrame) -> None:
    data = build_training_set(policy, "cohort", END, cohort="subprime", source=frame)  # the action says upweight: 3
    assert set(data.train["segment"]) == {"prime", "subprime"}
    assert data.weights is not None and len(data.weights) == len(data.train)
    assert set(data.weights[data.train["segment"].to_numpy() == "subprime"]) == {3.0}
    assert set(data.weights[data.train["segment"].to_numpy() == "prime"]) == {1.0}


def test_unknown_cohort_names_the_known_ones(policy: Policy, frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"cohort 'gold'.*\['prime', 'subprime'\]"):
        build_training_set(policy, "cohort", END, cohort="gold", source=frame)
    with pytest.raises(ConfigError, match="needs a cohort"):
        build_training_set(policy, "cohort", END, source=frame)


def test_emergency_takes_only_recent_labelled_rows(policy: Policy, frame: pd.DataFrame) -> None:
    data = build_training_set(policy, "emergency", END, source=frame)  # action: window 48h, min_rows 40
    rows = pd.concat([data.train, data.holdout])
    assert data.window_start == END - pd.Timedelta(hours=48)
    assert len(rows) == 46  # 48 hourly rows, minus the two whose labels arrive after END
    assert (rows["label_timestamp"] <= END).all()


def test_emergency_refuses_too_few_rows(policy: Policy, frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"only 46 labelled rows.*min_rows 100"):
        build_training_set(policy, "emergency", END, source=frame, min_rows=100)


def test_empty_window_is_a_data_error(policy: Policy, frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no rows"):
        build_training_set(policy, "full", "2024-01-01", source=frame)


def test_labels_missing_for_the_window(policy: Policy, frame: pd.DataFrame) -> None:
    late = frame.assign(label_timestamp=frame["label_timestamp"] + pd.Timedelta(days=365))
    with pytest.raises(DataError, match="labels missing for the window"):
        build_training_set(policy, "recent_window", END, source=late)
    unlabelled = frame.assign(defaulted=float("nan"))
    with pytest.raises(DataError, match="labels missing"):
        build_training_set(policy, "full", END, source=unlabelled)


def test_single_label_class_is_a_data_error(policy: Policy, frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"single label class \(defaulted=0"):
        build_training_set(policy, "full", END, source=frame.assign(defaulted=0))


def test_missing_columns_are_named(policy: Policy, frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"lacks columns \['x2', 'segment'\]"):
        build_training_set(policy, "full", END, source=frame.drop(columns=["x2", "segment"]))


def test_parquet_source(policy: Policy, frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "credit.parquet"
    frame.to_parquet(path)
    from_file = build_training_set(policy, "recent_window", END, source=path)
    from_frame = build_training_set(policy, "recent_window", END, source=frame)
    pd.testing.assert_frame_equal(from_file.train, from_frame.train)
    with pytest.raises(DataError, match="not found"):
        build_training_set(policy, "full", END, source=tmp_path / "nope.parquet")


def test_bad_strategy_and_window_are_config_errors(policy_factory: Callable[..., Policy], frame: pd.DataFrame) -> None:
    policy = policy_factory(actions=[])
    with pytest.raises(ConfigError, match="unknown training strategy"):
        build_training_set(policy, "newest", END, source=frame)
    with pytest.raises(ConfigError, match="needs a window"):
        build_training_set(policy, "recent_window", END, source=frame)
    with pytest.raises(ConfigError, match="window '5x'"):
        build_training_set(policy, "recent_window", END, window="5x", source=frame)

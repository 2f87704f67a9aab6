"""The Feast path of build_training_set gives the same rows as the DataFrame path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from components.data.scenarios import generate, write_scenario
from components.features import apply, ingest
from components.policy import load_policy
from components.settings import Settings
from components.training.datasets import build_training_set

pytestmark = pytest.mark.integration


def test_feast_training_set_matches_the_dataframe_path(tmp_path: Path) -> None:
    settings = Settings(workdir=tmp_path / "work")
    apply(settings)
    write_scenario("credit", settings.data_dir, rows=3000, seed=1)
    ingest("credit", settings)
    policy = load_policy("credit")
    end = pd.Timestamp("2025-06-01", tz="UTC")
    from_feast = build_training_set(policy, "recent_window", end, window="6M", settings=settings)
    from_frame = build_training_set(policy, "recent_window", end, window="6M", source=generate("credit", rows=3000, seed=1))
    assert from_feast.window == from_frame.window
    for part in ("train", "holdout"):
        got, want = getattr(from_feast, part), getattr(from_frame, part)
        assert len(got) == len(want) > 0
        cols = [policy.entity, policy.timestamp, *policy.all_features, "segment", policy.label]
        pd.testing.assert_frame_equal(
            got[cols].sort_values([policy.timestamp, policy.entity], ignore_index=True),
            want[cols].sort_values([policy.timestamp, policy.entity], ignore_index=True),
            check_dtype=False,
        )
    assert from_feast.holdout[policy.timestamp].min() > from_feast.train[policy.timestamp].max()

"""Synthetic credit-like data, a matching policy, and fixtures over them (import them into a test module).

A small data set with segments, delayed labels and a known signal (x1, x2; x3 is noise). The
fixtures live here, not in a conftest.py, because sibling conftest.py files clash under
``--doctest-modules``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from components.policy import Policy, policy_from_dict

START = pd.Timestamp("2025-01-01", tz="UTC")


def make_frame(rows: int = 1200, seed: int = 0, start: pd.Timestamp = START, freq: str = "h") -> pd.DataFrame:
    """Hourly rows; P(y=1) rises with x1 and x2 (x3 is noise); subprime is harder; labels arrive 2 h later."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["prime", "subprime"], rows, p=[0.6, 0.4])
    employment = rng.choice(["employed", "self", "none"], rows)
    x1, x2, x3 = rng.normal(size=rows), rng.normal(size=rows), rng.normal(size=rows)
    logit = 1.6 * x1 - 1.0 * x2 + 0.8 * (employment == "none") - 0.4 + np.where(segment == "subprime", 0.5, 0.0)
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    ts = pd.date_range(start, periods=rows, freq=freq)
    return pd.DataFrame({
        "applicant_id": np.arange(rows), "event_timestamp": ts, "x1": x1, "x2": x2, "x3": x3,
        "employment": employment, "segment": segment, "defaulted": y, "label_timestamp": ts + pd.Timedelta(hours=2),
    })


def make_policy(**overrides: Any) -> Policy:
    raw: dict[str, Any] = {
        "model": "credit-test", "entity": "applicant_id", "label": "defaulted", "period": "hour",
        "features": ["x1", "x2", "x3"], "categorical_features": ["employment"],
        "segments": {"column": "segment", "values": ["prime", "subprime"]},
        "feature_service": "credit_test_v1",
        "trainer": {"kind": "sklearn_logreg", "seed": 0, "holdout": 0.25},
        "gate": {"metric": "auc", "min_improvement": 0.0, "max_segment_regression": 0.02},
        "monitors": [{"name": "gini", "type": "performance", "metric": "gini", "max_relative_drop": 0.05}],
        "actions": [
            {"when": ["gini"], "strategy": "recent_window", "window": "10d"},
            {"when": ["gini"], "strategy": "emergency", "window": "48h", "min_rows": 40},
            {"when": ["gini"], "strategy": "cohort", "upweight": 3},
        ],
    }
    raw.update(overrides)
    return policy_from_dict(raw)


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def policy() -> Policy:
    return make_policy()


@pytest.fixture
def policy_factory() -> Callable[..., Policy]:
    return make_policy


@pytest.fixture
def frame_factory() -> Callable[..., pd.DataFrame]:
    return make_frame

"""Degenerate references give running monitors and a warning naming the problem, never a refusal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.monitor.engine import run_monitors
from components.policy import Policy

POLICY = Policy.model_validate({
    "model": "m", "entity": "id", "label": "y", "features": ["x", "k"],
    "monitors": [
        {"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.7, "min_samples": 50},
        {"name": "fd", "type": "feature_drift"},
        {"name": "ld", "type": "label_drift", "min_samples": 50},
        {"name": "cd", "type": "concept_drift", "detector": "fet_online", "min_samples": 50},
    ],
    "actions": [{"when": ["acc", "fd", "ld", "cd"], "strategy": "full"}],
})


def window(seed: int, n: int, flip: float, start: str = "2025-02-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (x > 0).astype(int)
    y = np.where(rng.random(n) < flip, 1 - y, y)
    return pd.DataFrame({"event_timestamp": pd.date_range(start, periods=n, freq="min", tz="UTC"), "x": x, "k": rng.integers(0, 5, n).astype(float),
                         "y": y, "prediction": 1 / (1 + np.exp(-8 * x))})


def run(ref: pd.DataFrame) -> tuple[list[str], dict]:
    report = run_monitors(POLICY, ref, window(1, 2000, 0.1))
    return report.warnings, {m["name"]: m for m in report.monitors}


def test_reference_without_errors_runs_and_names_the_problem() -> None:
    warnings, monitors = run(window(0, 1000, 0.0, "2025-01-01"))
    assert monitors["cd"]["results"][0]["status"] == "ok" and monitors["cd"]["results"][0]["test"] == "page_hinkley"
    assert any("no errors" in w for w in warnings)
    assert any("training data passed as reference" in w for w in warnings)


def test_one_class_constant_column_and_short_reference_warn() -> None:
    ref = window(0, 150, 0.1, "2025-01-01").assign(y=1, k=3.0)
    warnings, monitors = run(ref)
    assert any("one class" in w for w in warnings)
    assert any("['k'] are constant" in w for w in warnings)
    assert any("far fewer than the current window" in w for w in warnings)
    assert all(m["results"] for m in monitors.values())


@pytest.mark.parametrize("rows", [20, 60])
def test_tiny_reference_still_gives_every_monitor(rows: int) -> None:
    warnings, monitors = run(window(0, rows, 0.1, "2025-01-01"))
    assert set(monitors) == {"acc", "fd", "ld", "cd"}
    assert any("far fewer" in w for w in warnings)

"""SPRT: detection point within bounds, acceptance of H0, effect size, per-cohort positions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from components.errors import ConfigError, DataError
from components.monitor.sequential import sprt, sprt_by_cohort

pytestmark = pytest.mark.unit


def test_boundaries_and_llr_steps() -> None:
    r = sprt(np.zeros(3), p0=0.1, relative_drop=0.5, alpha=0.05, beta=0.2)
    assert r.threshold == pytest.approx(math.log(0.8 / 0.05))
    assert r.details["lower"] == pytest.approx(math.log(0.2 / 0.95))
    assert r.statistic == pytest.approx(3 * math.log(0.95 / 0.9))  # three non-clicks
    assert r.details["decision"] == "undecided"


def test_detects_a_drop_at_a_bounded_point() -> None:
    rng = np.random.default_rng(0)
    points = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        clicks = (rng.random(5000) < 0.05).astype(int)  # 50% below p0 = 0.1
        r = sprt(clicks, p0=0.1, relative_drop=0.3, alpha=0.01, beta=0.1)
        assert r.drift and r.details["decision"] == "drop"
        points.append(r.detected_at)
        assert r.details["effect_size"] < -0.25
    # Wald's expected sample size under H1 here is about 190; every run stops well inside the stream.
    assert 100 < np.median(points) < 300 and max(points) < 800


def test_accepts_h0_without_a_drop() -> None:
    rng = np.random.default_rng(1)
    clicks = (rng.random(5000) < 0.1).astype(int)
    r = sprt(clicks, p0=0.1, relative_drop=0.3, alpha=0.01, beta=0.1)
    assert not r.drift and r.detected_at is None
    assert r.details["decision"] == "no_drop" and len(r.details["h0_accepted_at"]) == 1
    assert r.statistic <= r.details["lower"]


def test_restart_catches_a_late_drop_that_wald_misses() -> None:
    wald_hits, after_onset = 0, []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        clicks = np.r_[rng.random(2000) < 0.1, rng.random(3000) < 0.05].astype(int)
        wald_hits += sprt(clicks, p0=0.1, relative_drop=0.3, alpha=0.01, beta=0.1).drift
        again = sprt(clicks, p0=0.1, relative_drop=0.3, alpha=0.01, beta=0.1, restart=True)
        assert again.drift
        after_onset.append(again.detected_at >= 2000)
        if again.detected_at >= 2000:
            assert again.detected_at < 3000 and len(again.details["h0_accepted_at"]) >= 1
    assert wald_hits <= 5  # Wald's single test mostly accepted H0 before the drop began
    assert sum(after_onset) >= 16  # each restart spends alpha: a few early alarms are the price


def test_nan_outcomes_skipped_positions_kept() -> None:
    clicks = np.r_[np.full(10, np.nan), np.zeros(2000)]
    r = sprt(clicks, p0=0.5, relative_drop=0.5, alpha=0.05, beta=0.2)
    assert r.drift and r.detected_at >= 10 and r.details["nan_dropped"] == 10


def test_by_cohort_positions_in_the_full_frame_and_baseline_frame() -> None:
    rng = np.random.default_rng(3)
    n = 8000
    cohort = rng.choice(["new", "casual", "power"], n)
    rate = np.where((cohort == "casual") & (np.arange(n) >= 2000), 0.04, 0.1)
    df = pd.DataFrame({"user_cohort": cohort, "clicked": (rng.random(n) < rate).astype(int)})
    ref = pd.DataFrame({"user_cohort": rng.choice(["new", "casual", "power"], 6000), "clicked": (rng.random(6000) < 0.1).astype(int)})
    res = {r.segment: r for r in sprt_by_cohort(df, "user_cohort", "clicked", ref, relative_drop=0.3, alpha=0.01, beta=0.1, restart=True)}
    assert set(res) == {"new", "casual", "power"}
    assert res["casual"].drift and not res["new"].drift and not res["power"].drift
    at = res["casual"].detected_at
    assert 2000 <= at < 4000 and df.user_cohort.iloc[at] == "casual"
    assert res["casual"].details["p0"] == pytest.approx(ref[ref.user_cohort == "casual"].clicked.mean())


def test_by_cohort_missing_baseline_is_insufficient_data() -> None:
    df = pd.DataFrame({"c": ["a", "b"] * 50, "y": [0, 1] * 50})
    res = {r.segment: r for r in sprt_by_cohort(df, "c", "y", {"a": 0.5}, relative_drop=0.2)}
    assert res["b"].status == "insufficient_data" and "no baseline" in res["b"].details["reason"]
    assert res["a"].status == "ok"


def test_bad_settings_and_input() -> None:
    with pytest.raises(ConfigError, match="p0"):
        sprt([0, 1], p0=0.0, relative_drop=0.2)
    with pytest.raises(ConfigError, match="relative_drop"):
        sprt([0, 1], p0=0.1, relative_drop=1.5)
    with pytest.raises(DataError, match="0/1"):
        sprt([0, 2], p0=0.1, relative_drop=0.2)
    with pytest.raises(DataError, match="column 'clicked' is missing"):
        sprt_by_cohort(pd.DataFrame({"c": ["a"]}), "c", "clicked", {"a": 0.1}, relative_drop=0.2)


def test_llr_increments_are_the_path_the_test_walked() -> None:
    from components.monitor.sequential import llr_increments

    rng = np.random.default_rng(5)
    clicks = (rng.random(4000) < 0.06).astype(int)
    r = sprt(clicks, p0=0.10, relative_drop=0.3, alpha=0.01, beta=0.1)
    assert r.drift
    path = np.cumsum(llr_increments(clicks, r.details["p0"], r.details["p1"]))
    assert path[r.detected_at] == pytest.approx(r.details["llr"]) and path[r.detected_at] >= r.details["upper"]
    assert (path[: r.detected_at] < r.details["upper"]).all()

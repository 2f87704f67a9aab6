"""Error slicing: the failing slice ranks first, numeric columns are bucketed, shares add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.errors import DataError
from components.monitor.slicing import rank_slices

pytestmark = pytest.mark.unit


def make(rng: np.random.Generator, n: int, bad_region: str | None, bad_hours: tuple[int, int] | None) -> pd.DataFrame:
    df = pd.DataFrame({"region": rng.choice(["north", "south", "east", "west"], n), "hour": rng.integers(0, 24, n), "y": rng.integers(0, 2, n)})
    p_wrong = np.full(n, 0.1)
    if bad_region:
        p_wrong[df.region.to_numpy() == bad_region] = 0.4
    if bad_hours:
        p_wrong[(df.hour >= bad_hours[0]).to_numpy() & (df.hour < bad_hours[1]).to_numpy()] = 0.4
    df["pred"] = np.where(rng.random(n) < p_wrong, 1 - df.y, df.y)
    return df


def test_failing_region_ranks_first_with_most_of_the_increase() -> None:
    rng = np.random.default_rng(0)
    base, cur = make(rng, 6000, None, None), make(rng, 6000, "west", None)
    ranked = rank_slices(cur, "y", "pred", ["region", "hour"], baseline_df=base)
    top = ranked[0]
    assert (top["column"], top["slice"]) == ("region", "west")
    assert top["share_of_increase"] > 0.8
    assert top["error_rate"] == pytest.approx(0.4, abs=0.04) and top["baseline_error_rate"] == pytest.approx(0.1, abs=0.03)
    region_shares = [r["share_of_increase"] for r in ranked if r["column"] == "region" and r["excess_errors"] > 0]
    assert sum(region_shares) == pytest.approx(1.0)


def test_hour_is_bucketed_and_the_bad_hours_are_found() -> None:
    rng = np.random.default_rng(1)
    base, cur = make(rng, 8000, None, None), make(rng, 8000, None, (18, 24))
    ranked = rank_slices(cur, "y", "pred", ["hour"], baseline_df=base, bins=4)
    assert len({r["slice"] for r in ranked}) == 4  # 24 hours -> 4 quantile buckets
    assert ranked[0]["slice"] == "[18, inf)" and ranked[0]["share_of_increase"] > 0.8


def test_without_baseline_compares_with_the_overall_rate() -> None:
    rng = np.random.default_rng(2)
    cur = make(rng, 4000, "east", None)
    ranked = rank_slices(cur, "y", "pred", ["region"])
    assert ranked[0]["slice"] == "east"
    overall = float((cur.y != cur.pred).mean())
    assert ranked[0]["baseline_error_rate"] == pytest.approx(overall)


def test_missing_labels_skipped_and_missing_column_errors() -> None:
    rng = np.random.default_rng(3)
    cur = make(rng, 500, None, None).astype({"y": float})
    cur.loc[:99, "y"] = np.nan
    ranked = rank_slices(cur, "y", "pred", ["region"])
    assert sum(r["n"] for r in ranked) == 400
    with pytest.raises(DataError, match="column 'city' is missing"):
        rank_slices(cur, "y", "pred", ["city"])

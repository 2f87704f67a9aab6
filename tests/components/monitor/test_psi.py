"""PSI: quantile bins fixed on the reference, the "other" bucket, levels and the small-sample guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.errors import ConfigError, DataError
from components.monitor.psi import PSIReference, psi_test

pytestmark = pytest.mark.unit


def test_bins_are_reference_quantiles_and_reused() -> None:
    rng = np.random.default_rng(0)
    ref = PSIReference.fit(rng.normal(size=10_000), bins=10)
    assert len(ref.counts) == 10
    assert np.all(np.abs(ref.counts - 1000) <= 1)  # deciles: equal reference mass per bucket
    assert ref.psi(rng.normal(size=10_000)) < 0.01
    shifted = ref.psi(rng.normal(0.5, 1, 10_000))
    assert 0.2 < shifted < 0.3  # PSI of a half-sigma shift is about 0.25


def test_psi_formula_on_known_shares() -> None:
    ref = PSIReference.fit(np.repeat([0.0, 1.0], [500, 500]), bins=2)
    cur = np.repeat([0.0, 1.0], [200, 800])
    r, c = ref.shares(ref.counts), ref.shares(ref.bucket_counts(cur))
    assert ref.psi(cur) == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    assert ref.psi(cur) == pytest.approx((0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5), rel=1e-2)


def test_levels_ok_warn_drift() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=20_000)
    levels = [psi_test(ref, rng.normal(mu, 1, 20_000)).details["level"] for mu in (0.0, 0.35, 0.8)]
    assert levels == ["ok", "warn", "drift"]
    r = psi_test(ref, rng.normal(0.8, 1, 20_000), feature="x", segment="prime")
    assert r.drift and r.feature == "x" and r.segment == "prime" and r.threshold == 0.25
    assert len(r.details["bins"]) == 10
    assert sum(b["contribution"] for b in r.details["bins"]) == pytest.approx(r.statistic)


def test_categorical_unseen_categories_go_to_other() -> None:
    rng = np.random.default_rng(2)
    ref_values = rng.choice(["books", "games", "music"], 5000, p=[0.5, 0.3, 0.2])
    fitted = PSIReference.fit(ref_values, categorical=True)
    assert fitted.labels == ["books", "games", "music", "other"]
    same = psi_test(ref_values, rng.choice(["books", "games", "music"], 5000, p=[0.5, 0.3, 0.2]), categorical=True)
    assert same.details["level"] == "ok"
    new = psi_test(None, rng.choice(["books", "games", "toys"], 5000, p=[0.4, 0.2, 0.4]), fitted=fitted)
    assert new.drift
    other = {b["bucket"]: b for b in new.details["bins"]}["other"]
    assert other["current"] == pytest.approx(0.4, abs=0.03) and other["contribution"] > 1


def test_small_sample_guard_stops_noise_but_not_real_drift() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=5000)
    fitted = PSIReference.fit(ref)
    noisy = [psi_test(None, rng.normal(size=25), fitted=fitted) for _ in range(200)]
    raw_over = sum(r.statistic > 0.25 for r in noisy)
    assert raw_over > 20  # without the guard, a plain PSI > 0.25 rule fires often on 25 rows
    assert sum(r.drift for r in noisy) == 0
    assert all(r.threshold > 0.25 for r in noisy)
    assert noisy[0].details["noise_floor"] == pytest.approx(27.877 * (1 / 5000 + 1 / 25), rel=1e-3)
    # A large real shift still fires on a small window, and at the plain threshold on a big one.
    assert psi_test(None, rng.normal(3, 1, 25), fitted=fitted).drift
    big = psi_test(None, rng.normal(0.8, 1, 5000), fitted=fitted)
    assert big.drift and big.threshold == 0.25


def test_nan_dropped_and_bad_input() -> None:
    rng = np.random.default_rng(4)
    cur = rng.normal(size=1000)
    cur[:7] = np.nan
    r = psi_test(rng.normal(size=1000), cur)
    assert r.details["nan_current"] == 7 and r.details["n_current"] == 993
    cats = psi_test(np.array(["a", "b"] * 50, dtype=object), np.array(["a", None, pd.NA, np.nan] * 5, dtype=object), categorical=True)
    assert cats.details["nan_current"] == 15 and cats.details["n_current"] == 5
    with pytest.raises(DataError, match="all NaN"):
        psi_test(rng.normal(size=100), np.full(10, np.nan))
    with pytest.raises(DataError, match="empty"):
        psi_test(rng.normal(size=100), [])
    with pytest.raises(DataError, match="not numeric"):
        psi_test(["a", "b"] * 50, ["a"] * 10)
    with pytest.raises(ConfigError, match="bins"):
        PSIReference.fit(rng.normal(size=100), bins=1)
    with pytest.raises(ConfigError, match="warn <= drift"):
        psi_test(rng.normal(size=100), rng.normal(size=100), warn=0.3, drift=0.2)

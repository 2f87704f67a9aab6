"""False-alarm rates on no-drift data, over many seeds, against each test's nominal level.

Every check asserts ``alarms <= binom.ppf(0.999, runs, level)``: at or below the level
within sampling error. Where a detector has power, the companion detection tests in the
other modules show it still fires on real shifts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from components.monitor.concept import detect_on_stream
from components.monitor.drift import ReferenceSummary, feature_drift
from components.monitor.psi import PSIReference, psi_test
from components.monitor.sequential import sprt

SEEDS = 200


def within(alarms: int, runs: int, level: float) -> bool:
    return alarms <= binom.ppf(0.999, runs, level)


def window(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.exponential(size=n),
            "c": rng.integers(0, 20, n).astype(float),
            "d": rng.uniform(size=n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
            "flag": rng.choice(["no", "yes"], n, p=[0.85, 0.15]),
        }
    )


@pytest.mark.unit
@pytest.mark.parametrize("correction", ["bonferroni", "fdr"])
@pytest.mark.parametrize("categorical_test", ["chi2", "fet"])
def test_ks_chi2_fet_family_wise_rate(correction: str, categorical_test: str) -> None:
    alpha = 0.1
    cats = ["plan", "flag"] if categorical_test == "chi2" else ["flag"]
    alarms = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        summary = ReferenceSummary.fit(window(rng, 300), ["a", "b", "c", "d"], cats, categorical_test=categorical_test, correction=correction, p_value=alpha)
        alarms += any(r.drift for r in summary.test(window(rng, 200)))
    assert within(alarms, SEEDS, alpha), f"{alarms}/{SEEDS} family-wise false alarms"


@pytest.mark.unit
def test_uncorrected_per_feature_ks_rate_is_near_alpha() -> None:
    # The sanity check that the tests are not merely conservative: one feature, no correction.
    alpha, alarms = 0.1, 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(1000 + seed)
        summary = ReferenceSummary.fit(window(rng, 300), ["a"], [], p_value=alpha)
        alarms += summary.test(window(rng, 300))[0].drift
    assert within(alarms, SEEDS, alpha) and alarms >= binom.ppf(0.001, SEEDS, alpha)


@pytest.mark.unit
def test_cvm_with_correction() -> None:
    alpha, runs, alarms = 0.1, 60, 0
    for seed in range(runs):
        rng = np.random.default_rng(2000 + seed)
        res = feature_drift(window(rng, 150), window(rng, 150), ["a", "b", "d"], [], numeric_test="cvm", correction="bonferroni", p_value=alpha)
        alarms += any(r.drift for r in res)
    assert within(alarms, runs, alpha)


@pytest.mark.unit
@pytest.mark.parametrize(("n_current", "categorical"), [(30, False), (60, False), (1000, False), (40, True)])
def test_psi_guard_small_and_large_windows(n_current: int, categorical: bool) -> None:
    alarms = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(3000 + seed)
        if categorical:
            cats = [f"c{i}" for i in range(12)]
            p = np.linspace(1, 2, 12) / np.linspace(1, 2, 12).sum()
            ref, cur = rng.choice(cats, 3000, p=p), rng.choice(cats, n_current, p=p)
        else:
            ref, cur = rng.normal(size=3000), rng.normal(size=n_current)
        fitted = PSIReference.fit(ref, bins=10, categorical=categorical)
        alarms += psi_test(None, cur, fitted=fitted).drift
    assert within(alarms, SEEDS, 0.001)


@pytest.mark.unit
@pytest.mark.parametrize(("alpha", "beta"), [(0.05, 0.2), (0.01, 0.1)])
def test_sprt_type_one_error(alpha: float, beta: float) -> None:
    alarms = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(4000 + seed)
        outcomes = (rng.random(6000) < 0.08).astype(int)
        r = sprt(outcomes, p0=0.08, relative_drop=0.2, alpha=alpha, beta=beta)
        alarms += r.drift
        assert r.details["decision"] in ("no_drop", "drop", "undecided")
    # Wald: P(reject H0 | H0) <= alpha / (1 - beta).
    assert within(alarms, SEEDS, alpha / (1 - beta))


@pytest.mark.unit
@pytest.mark.parametrize("detector", ["adwin", "page_hinkley"])
def test_adwin_page_hinkley_rarely_fire_on_stationary_streams(detector: str) -> None:
    runs, alarms = 60, 0
    for seed in range(runs):
        rng = np.random.default_rng(5000 + seed)
        alarms += detect_on_stream((rng.random(2000) < 0.12).astype(int), detector=detector).drift
    assert within(alarms, runs, 0.05)


@pytest.mark.integration  # five calibrations per detector: ~10-20 s
@pytest.mark.parametrize(("detector", "ert", "window_size", "length"), [("fet_online", 1000, 50, 150), ("cvm_online", 1000, 30, 130)])
def test_online_detectors_false_alarms_within_a_stream_shorter_than_ert(detector: str, ert: int, window_size: int, length: int) -> None:
    runs, alarms = 0, 0
    for ref_seed in range(5):
        rng = np.random.default_rng(6000 + ref_seed)
        draw = (lambda n, rng=rng: (rng.random(n) < 0.1).astype(int)) if detector == "fet_online" else (lambda n, rng=rng: rng.exponential(0.4, n))
        ref = draw(500)
        for _ in range(10):
            r = detect_on_stream(draw(length), detector=detector, reference_errors=ref, ert=ert, window_size=window_size, seed=ref_seed)
            alarms += r.drift
            runs += 1
    # With an expected run time of 1000, P(alarm within the ~100 rows after the first full window)
    # is about 1 - exp(-100/1000) ~ 0.1.
    expected = 1 - np.exp(-(length - window_size + 1) / ert)
    assert within(alarms, runs, expected), f"{alarms}/{runs} alarms, expected rate {expected:.3f}"

"""Concept-drift detectors: the shared contract, seeded detection points, no alarm on stationary streams."""

from __future__ import annotations

import numpy as np
import pytest

from components.errors import ConfigError, DataError
from components.monitor.concept import (
    ADWIN,
    CVMOnline,
    FETOnline,
    PageHinkley,
    detect_on_stream,
    make_detector,
)

pytestmark = pytest.mark.unit


def errors(seed: int, n_before: int, n_after: int, p_before: float = 0.1, p_after: float = 0.35) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.random(n_before) < p_before, rng.random(n_after) < p_after].astype(float)


@pytest.fixture(scope="module")
def fet() -> FETOnline:
    ref = (np.random.default_rng(99).random(1000) < 0.1).astype(int)
    return FETOnline(ref, ert=1000, window_size=100, seed=0)


@pytest.mark.parametrize("make", [lambda: ADWIN(), lambda: PageHinkley()])
def test_contract_read_only_flag_and_reset(make) -> None:
    det = make()
    with pytest.raises(AttributeError):
        det.drift_detected = True
    for x in errors(0, 500, 500, 0.05, 0.6):
        det.update(x)
    assert det.n_seen == 1000
    det._reset()
    assert det.n_seen == 0 and not det.drift_detected


@pytest.mark.parametrize("name", ["adwin", "page_hinkley", "fet_online", "cvm_online"])
def test_every_detector_is_deterministic_after_reset(name: str) -> None:
    rng = np.random.default_rng(12)
    onset = 150
    if name == "cvm_online":
        ref, stream = rng.exponential(0.3, 500), np.r_[rng.exponential(0.3, onset), rng.exponential(0.9, 150)]
    else:
        ref, stream = (rng.random(1000) < 0.1).astype(int), errors(12, onset, 300, 0.1, 0.5)
    det = make_detector(name, ref, ert=1000, window_size=50)
    with pytest.raises(AttributeError):
        det.drift_detected = True  # type: ignore[misc]
    first = [i for i, x in enumerate(stream) if det.update(x)]
    det._reset()
    assert det.n_seen == 0 and not det.drift_detected
    assert [i for i, x in enumerate(stream) if det.update(x)] == first
    assert first and onset <= first[0] < onset + 100  # fires, and only after the change


@pytest.mark.parametrize(("cls", "kwargs"), [(ADWIN, {"delta": 0}), (ADWIN, {"clock": 0}), (PageHinkley, {"threshold": 0}), (PageHinkley, {"min_instances": 0})])
def test_constructors_reject_bad_settings(cls, kwargs) -> None:
    with pytest.raises(ValueError):
        cls(**kwargs)


def test_adwin_first_detection_matches_river() -> None:
    from river.drift import ADWIN as RiverADWIN

    for seed in range(8):
        stream = errors(seed, 1000, 1000)
        ours, theirs = ADWIN(delta=0.002), RiverADWIN(delta=0.002)
        mine = next(i for i, x in enumerate(stream) if ours.update(x))
        river_at = None
        for i, x in enumerate(stream):
            theirs.update(x)
            if theirs.drift_detected:
                river_at = i
                break
        # Same algorithm and settings; river's bound is slightly wider for short sub-windows
        # (n - min_window_length + 1), so ours fires at the same check or an earlier one.
        assert river_at is not None and 1000 <= mine <= river_at < 1250


def test_adwin_shrinks_its_window_to_the_new_regime() -> None:
    det = ADWIN()
    for x in errors(1, 2000, 600, 0.1, 0.5):
        det.update(x)
    assert det.width < 1000 and det.estimation == pytest.approx(0.5, abs=0.08)


@pytest.mark.parametrize("detector", ["adwin", "page_hinkley"])
def test_detection_delay_bounded_and_quiet_when_stationary(detector: str) -> None:
    # thresholds derived from the default budget (0.05 per run) and the reference, as the runner calls it
    delays = []
    for seed in range(10):
        ref = errors(500 + seed, 1000, 0)
        r = detect_on_stream(errors(seed, 1000, 1000), detector=detector, reference_errors=ref)
        assert r.drift and r.detected_at >= 1000  # no alarm before the change
        assert r.details["false_alarm_rate"] <= 0.05 + 1e-9
        delays.append(r.detected_at - 1000)
        quiet = detect_on_stream(errors(100 + seed, 2000, 0), detector=detector, reference_errors=ref)
        assert not quiet.drift and quiet.detected_at is None
    assert np.median(delays) < 150 and max(delays) < 400


def test_fet_online_detects_and_stays_quiet(fet: FETOnline) -> None:
    ref = (np.random.default_rng(99).random(1000) < 0.1).astype(int)
    r = detect_on_stream(errors(3, 300, 500), detector="fet_online", reference_errors=ref, ert=1000, window_size=100)
    assert r.drift and 300 <= r.detected_at < 420
    assert r.details["error_rate_after"] > r.details["error_rate_before"]
    assert r.threshold is not None and r.statistic > r.threshold
    quiet = detect_on_stream(errors(4, 100, 0), detector="fet_online", reference_errors=ref, ert=1000, window_size=100)
    assert not quiet.drift  # 100 rows, expected run time 1000


def test_calibration_is_cached(fet: FETOnline, monkeypatch: pytest.MonkeyPatch) -> None:
    import alibi_detect.cd

    def no_simulation(*args: object, **kwargs: object) -> None:
        raise AssertionError("the same reference and settings were calibrated again")

    monkeypatch.setattr(alibi_detect.cd, "FETDriftOnline", no_simulation)  # a cache miss would build a new detector
    ref = (np.random.default_rng(99).random(1000) < 0.1).astype(int)
    again = FETOnline(ref, ert=1000, window_size=100, seed=0)
    assert np.array_equal(again._detector.thresholds, fet._detector.thresholds, equal_nan=True)


def test_cvm_online_on_log_loss() -> None:
    rng = np.random.default_rng(5)
    ref = rng.exponential(0.3, 500)
    stream = np.r_[rng.exponential(0.3, 150), rng.exponential(0.8, 300)]
    r = detect_on_stream(stream, detector="cvm_online", reference_errors=ref, ert=500, window_size=50)
    assert r.drift and 150 <= r.detected_at < 260
    assert len(CVMOnline(ref, ert=500, window_size=50)._ref) == 300  # reference subsampled


def test_trace_is_downsampled_and_keeps_the_detection_point() -> None:
    r = detect_on_stream(errors(6, 3000, 3000), detector="adwin", stop_on_detection=False)
    ts = [p["t"] for p in r.details["trace"]]
    assert len(ts) <= 201 and r.detected_at in ts and ts == sorted(ts)
    assert r.details["n"] == 6000


def test_nan_errors_are_skipped_and_positions_kept() -> None:
    stream = errors(7, 1000, 1000)
    with_gaps = np.insert(stream, 0, np.full(50, np.nan))
    a = detect_on_stream(stream, detector="adwin")
    b = detect_on_stream(with_gaps, detector="adwin")
    assert b.detected_at == a.detected_at + 50 and b.details["nan_dropped"] == 50


def test_reference_warm_up_for_adwin() -> None:
    ref = errors(8, 2000, 0)
    r = detect_on_stream(errors(9, 200, 400), detector="adwin", reference_errors=ref)
    assert r.drift and 200 <= r.detected_at < 350
    assert r.details["error_rate_reference"] == pytest.approx(ref.mean())


def test_insufficient_data_and_errors() -> None:
    ref = (np.random.default_rng(0).random(500) < 0.1).astype(int)
    short = detect_on_stream(np.zeros(20), detector="adwin")
    assert short.status == "insufficient_data" and not short.drift
    with pytest.raises(ConfigError, match="unknown concept-drift detector"):
        make_detector("ddm")
    with pytest.raises(DataError, match="needs reference_errors"):
        make_detector("fet_online")
    with pytest.raises(DataError, match="0/1 error stream"):
        detect_on_stream(np.full(200, 0.5), detector="fet_online", reference_errors=ref)
    with pytest.raises(DataError, match="empty"):
        detect_on_stream([], detector="adwin")
    with pytest.raises(ConfigError, match="both errors and correct"):
        make_detector("fet_online", np.zeros(100))


@pytest.mark.parametrize(
    ("reference", "problem"),
    [(np.zeros(500), "no errors"), (np.ones(300), "one value"), (np.array([0, 1, 0]), "fewer than 10"), (None, "no reference errors")],
)
def test_degenerate_reference_still_monitors_with_a_warning(reference: np.ndarray | None, problem: str) -> None:
    # fet_online cannot calibrate on these references: page_hinkley runs instead, and says so
    stream = errors(3, 1000, 1000, p_before=0.05, p_after=0.4)
    r = detect_on_stream(stream, detector="fet_online", reference_errors=reference)
    assert r.test == "page_hinkley" and r.status == "ok"
    assert any(problem in w for w in r.details["warnings"])
    assert r.drift and r.detected_at >= 900


def test_training_data_as_reference_is_named() -> None:
    # a reference with no errors against a stream that errs at 15% from its first row
    r = detect_on_stream(errors(4, 2000, 0, p_before=0.15), detector="page_hinkley", reference_errors=np.zeros(1000))
    assert any("training data passed as reference" in w for w in r.details["warnings"])
    honest = detect_on_stream(errors(4, 2000, 0, p_before=0.15), detector="page_hinkley", reference_errors=errors(5, 1000, 0, p_before=0.15))
    assert not any("training data" in w for w in honest.details["warnings"])


@pytest.mark.parametrize("name", ["fet_online", "cvm_online"])
def test_alibi_online_wrapper_decides_as_alibi_detects_own_predict(name: str) -> None:
    """update() runs alibi-detect's score / threshold / decision without predict()'s bookkeeping,
    and swaps in its private generator only when FET breaks a tie: the same statistics, thresholds
    and alarms, row by row, as alibi-detect's own predict() seeded alike."""
    import copy

    ties = 0
    for seed in range(3):
        rng = np.random.default_rng(40 + seed)
        if name == "cvm_online":
            ref, stream = rng.exponential(0.4, 300), np.r_[rng.exponential(0.4, 150), rng.exponential(0.7, 150)]
        else:  # a stream dense in ties with the threshold (FET's statistic is discrete)
            ref, stream = (rng.random(1000) < 0.1).astype(int), errors(40 + seed, 150, 150, 0.1, 0.2)
        ours = make_detector(name, ref, ert=300, window_size=20, seed=seed)
        theirs = copy.deepcopy(ours._detector)
        theirs.reset_state()
        outer = np.random.get_state()
        np.random.seed(seed)  # alibi-detect draws its tie-breaks from the global generator
        try:
            for x in stream:
                out = theirs.predict(np.array([int(x) if name == "fet_online" else float(x)]))["data"]
                fired = ours.update(x)
                assert fired == bool(out["is_drift"])
                stat = np.asarray(out["test_stat"], dtype=float)
                ties += bool(np.isfinite(stat).any() and np.nanmax(stat) == float(np.ravel(out["threshold"])[0]))
                assert np.array_equal([ours.statistic, ours.threshold], [np.nanmax(stat) if np.isfinite(stat).any() else np.nan,
                                      float(np.ravel(out["threshold"])[0])], equal_nan=True)
        finally:
            np.random.set_state(outer)
    assert name == "cvm_online" or ties > 0  # FET's draw path ran

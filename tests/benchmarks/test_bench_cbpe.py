"""bench_cbpe's window, peer and table logic on small synthetic data; NannyML is never needed."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import bench_cbpe as bench

pytestmark = pytest.mark.unit


def _calibrated(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores that are the true P(y=1); ``shift`` moves the inputs (covariate shift)."""
    p = 1 / (1 + np.exp(-2 * rng.normal(shift, 1.0, n)))
    return (rng.random(n) < p).astype(int), p


def _dataset(flip_last: bool = False) -> bench.Dataset:
    rng = np.random.default_rng(3)
    ref_y, ref_s = _calibrated(rng, 6000)
    windows = []
    for i, shift in enumerate((0.0, 0.0, 0.5, 1.0)):
        y, s = _calibrated(rng, 2000, shift)
        if flip_last and i == 3:
            y = 1 - y  # concept drift: same scores, the relation to the label reversed
        windows.append(bench.Window(f"w{i}", y, s, after_onset=i >= 2))
    return bench.Dataset("toy", "synthetic", ref_y, ref_s, windows)


def test_split_periods_keeps_time_order_and_covers_every_period() -> None:
    keys = [f"2025-{m:02d}" for m in range(1, 13)]
    train, ref, measured = bench.split_periods(list(reversed(keys)), "2025-09")
    assert train == keys[:4] and ref == keys[4:6] and measured == keys[6:]
    assert max(train) < min(ref) and max(ref) < min(measured)
    assert sorted(train + ref + measured) == keys
    with pytest.raises(ValueError, match="3 periods before the onset"):
        bench.split_periods(keys, "2025-03")


def test_fixed_windows_drop_the_short_remainder_and_mark_the_onset() -> None:
    y, s = np.arange(35) % 2, np.linspace(0, 1, 35)
    windows = bench.fixed_windows(y, s, 10, after_onset_from=2)
    assert [len(w.scores) for w in windows] == [10, 10, 10]
    assert [w.after_onset for w in windows] == [False, False, True]
    assert windows[1].scores[0] == s[10] and windows[2].labels.tolist() == y[20:30].tolist()


def test_period_key_groups_hours_into_days_and_months_by_month() -> None:
    ts = pd.Series(pd.to_datetime(["2025-03-01T23:00", "2025-03-02T00:00", "2025-04-15T00:00"], utc=True))
    assert bench.period_key(ts, "hour").tolist() == ["2025-03-01", "2025-03-02", "2025-04-15"]
    assert bench.period_key(ts, "month").tolist() == ["2025-03", "2025-03", "2025-04"]


def test_ours_tracks_realised_on_calibrated_scores_and_misses_concept_drift() -> None:
    truth = bench.realised(_dataset())
    ours = bench.estimate_ours(_dataset())
    assert set(ours.values) == {"w0", "w1", "w2", "w3"}
    assert bench.mean_abs_error(ours, truth, "accuracy") < 0.02
    assert "calibration" in ours.note and "held-out ECE" in ours.note
    raw = bench.estimate_uncalibrated(_dataset())  # these scores are calibrated already: raw is as good
    assert abs(bench.mean_abs_error(raw, truth, "accuracy") - bench.mean_abs_error(ours, truth, "accuracy")) < 0.01
    for w, metrics in ours.values.items():
        value, lower, upper = metrics["accuracy"]
        assert lower < value < upper, w
    flipped = _dataset(flip_last=True)
    blind = bench.estimate_ours(flipped)
    flipped_truth = bench.realised(flipped)
    # same scores, so the estimate is unchanged while the realised accuracy collapses
    assert blind.values["w3"]["accuracy"][0] == pytest.approx(ours.values["w3"]["accuracy"][0])
    assert abs(blind.values["w3"]["accuracy"][0] - flipped_truth["w3"]["accuracy"]) > 0.3
    before = [w.name for w in flipped.windows if not w.after_onset]
    assert bench.mean_abs_error(blind, flipped_truth, "accuracy", only=before) < 0.02  # the flip is after the onset
    text = bench.blind_spot(flipped, blind, flipped_truth)
    assert "before onset" in text and "after onset" in text


def test_missing_peer_is_reported_not_raised(tmp_path: Path) -> None:
    data = _dataset()
    gone = bench.estimate_peer(data, None, "python3.11 not found")
    assert gone.values == {} and "not found" in gone.missing
    failed = bench.estimate_peer(data, Path("/bin/false"))
    assert failed.values == {} and "peer script failed" in failed.missing
    python, why = bench.ensure_peer_venv(tmp_path / "venv", python="no-such-python-3.11")
    assert python is None and "not found" in why
    truth = bench.realised(data)
    ours = bench.estimate_ours(data)
    table = bench.window_table(data, ours, gone, truth, "accuracy")
    assert len(table.splitlines()) == 1 + len(data.windows) and "w3 *" in table
    assert math.isnan(bench.mean_abs_error(gone, truth, "accuracy"))
    assert "nannyml -" in bench.summary_line(ours, gone, truth, "accuracy")


FAKE_PEER = """
import argparse, json, pandas as pd
p = argparse.ArgumentParser(); [p.add_argument(a) for a in ("--reference", "--windows", "--out")]; a = p.parse_args()
ref, win = pd.read_parquet(a.reference), pd.read_parquet(a.windows)
assert list(ref.columns) == ["y_true", "y_pred_proba", "y_pred"]
out = {}
for name, f in win.groupby("window", sort=False):
    acc = float(((f.y_pred_proba >= 0.5) == f.y_true).mean())  # a "perfect" peer: the realised accuracy
    out[name] = {"accuracy": {"value": acc, "lower": acc - 0.01, "upper": acc + 0.01},
                 "auc": {"value": None, "lower": None, "upper": None}}
json.dump({"nannyml": "fake", "fit_seconds": 0.5, "estimate_seconds": 0.25, "windows": out}, open(a.out, "w"))
"""


def test_peer_round_trip_sees_the_same_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "peer.py"
    script.write_text(FAKE_PEER)
    monkeypatch.setattr(bench, "PEER_SCRIPT", script)
    data = _dataset()
    truth = bench.realised(data)
    peer = bench.estimate_peer(data, Path(sys.executable))
    assert list(peer.values) == [w.name for w in data.windows]
    assert peer.seconds == pytest.approx(0.75)
    assert bench.mean_abs_error(peer, truth, "accuracy") == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(peer.values["w0"]["auc"][0])
    ours = bench.estimate_ours(data)
    line = bench.summary_line(ours, peer, truth, "auc")
    assert "nannyml -" in line  # the peer gave no AUC: no ratio invented
    png = bench.plot(data, ours, peer, truth, tmp_path / "cbpe_toy.png")
    assert png.exists() and png.stat().st_size > 1000


def test_peer_frame_carries_our_decision_rule() -> None:
    frame = bench.peer_frame([0, 1, 1], [0.5, 0.49, 0.9], "w")
    assert frame["y_pred"].tolist() == [1, 0, 1]
    assert json.loads(frame.to_json(orient="columns"))["window"] == {"0": "w", "1": "w", "2": "w"}

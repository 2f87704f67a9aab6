"""Calibration table: each monitor's false-alarm rate on stable data vs its stated rate, and
the default concept detector's detection delay vs river's ADWIN.

    PYTHONPATH=. python benchmarks/bench_calibration.py [--seeds 50] [--rows 1000 10000]

Stable windows of each size, ``--seeds`` seeds each; every monitor at the budget share of
a four-monitor policy (0.05 / 4 = 0.0125 per run). Delay: streams of ``2 x rows`` whose
error rate jumps at the middle (0.1 -> 0.35 and 0.1 -> 0.2), the median rows from onset to
alarm (a stream that never fires counts as missed) and the alarms before onset.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd

from components.monitor.concept import DEFAULT_DETECTOR, detect_on_stream
from components.monitor.drift import label_drift, prediction_drift
from components.monitor.performance import metric_check
from components.monitor.psi import PSIReference, psi_test
from components.monitor.reference_summary import ReferenceSummary
from components.monitor.sequential import sprt

RATE = 0.0125


def rates(n: int, seeds: int) -> list[tuple[str, float, float]]:
    """(monitor, fired rate, stated rate) on stable windows of ``n`` rows."""
    fired: dict[str, int] = {}

    def hit(name: str, drift: bool) -> None:
        fired[name] = fired.get(name, 0) + int(drift)

    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        cols = ["a", "b", "c"]
        ref = pd.DataFrame({c: rng.normal(size=n) for c in cols})
        summary = ReferenceSummary.fit(ref, cols, [], p_value=RATE)
        hit("feature_drift (ks x3, bonferroni)", any(r.drift for r in summary.test(pd.DataFrame({c: rng.normal(size=n) for c in cols}))))
        hit("psi guard", psi_test(None, rng.normal(size=n), fitted=PSIReference.fit(rng.normal(size=n), bins=10)).drift)
        hit("prediction_drift (ks)", prediction_drift(rng.beta(2, 5, n), rng.beta(2, 5, n), p_value=RATE).drift)
        hit("label_drift (chi2)", label_drift((rng.random(n) < 0.2).astype(int), (rng.random(n) < 0.2).astype(int), p_value=RATE).drift)
        y = rng.integers(0, 2, n)
        hit("performance (accuracy at its floor)", metric_check(y, np.where(rng.random(n) < 0.85, y, 1 - y).astype(float), "accuracy", min=0.85, confidence=1 - 2 * RATE).drift)
        hit("sequential (SPRT, alpha 0.01)", sprt((rng.random(n) < 0.08).astype(int), p0=0.08, relative_drop=0.2, alpha=0.01, beta=0.2).drift)
        ref_err = (rng.random(2000) < 0.1).astype(int)
        for det in ("adwin", "page_hinkley"):
            hit(f"concept_drift {det}", detect_on_stream((rng.random(n) < 0.1).astype(int), detector=det, reference_errors=ref_err, false_alarm_rate=RATE).drift)
    stated = {"psi guard": 0.001, "sequential (SPRT, alpha 0.01)": 0.01 / 0.8}
    return [(k, v / seeds, stated.get(k, RATE)) for k, v in fired.items()]


def _river_first(stream: np.ndarray) -> int | None:
    from river.drift import ADWIN

    det = ADWIN()
    for i, x in enumerate(stream):
        det.update(x)
        if det.drift_detected:
            return i
    return None


def delays(n: int, seeds: int, after: float) -> list[tuple[str, float, int, int]]:
    """(detector, median delay, missed, alarms before onset) on ``seeds`` streams of ``2n`` rows."""
    out: dict[str, list[int | None]] = {}
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        stream = np.r_[rng.random(n) < 0.1, rng.random(n) < after].astype(float)
        ref = (rng.random(2000) < 0.1).astype(int)
        for det in ("adwin", "page_hinkley"):
            out.setdefault(f"{det} (rate {RATE})", []).append(detect_on_stream(stream, detector=det, reference_errors=ref, false_alarm_rate=RATE).detected_at)
        out.setdefault("river ADWIN (delta 0.002)", []).append(_river_first(stream))
    rows = []
    for name, hits in out.items():
        after_onset = [h - n for h in hits if h is not None and h >= n]
        rows.append((name, float(np.median(after_onset)) if after_onset else math.nan, sum(h is None for h in hits), sum(h is not None and h < n for h in hits)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--rows", type=int, nargs="+", default=[1000, 10_000])
    args = ap.parse_args()
    print(f"default concept detector: {DEFAULT_DETECTOR}")
    print(f"\n| monitor | rows | fired rate ({args.seeds} seeds) | stated rate |\n| --- | ---: | ---: | ---: |")
    for n in args.rows:
        for name, fired, stated in rates(n, args.seeds):
            print(f"| {name} | {n} | {fired:.3f} | {stated:.4f} |")
    print("\n| detector | rows before/after | error rate after | median delay | missed | alarms before onset |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for n in args.rows:
        for after in (0.35, 0.2):
            for name, med, missed, early in delays(n, min(args.seeds, 30), after):
                print(f"| {name} | {n} | {after} | {med:.0f} | {missed} | {early} |")


if __name__ == "__main__":
    main()

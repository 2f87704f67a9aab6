"""Benchmark the monitoring detectors against peers, side by side on the same data.

1. Feature-drift throughput on ROWS x FEATURES (reference and current the same size):
   (a) Evidently 0.7 ``Report([DataDriftPreset()])``, (b) a plain scipy ``ks_2samp`` loop,
   (c) alibi-detect ``KSDrift`` built and run per window (naive), (d) driftloop's
   ``ReferenceSummary`` fitted once and reused per window, (e) the floor: sorting the current
   columns once. Prints seconds, rows/s and ratios, and checks that the flagged features
   agree with alibi-detect. Goals: >= 10x faster than Evidently; within 10x of the floor.
2. Concept drift on 0/1 error streams (abrupt and gradual, several seeds): detection delay
   and false alarms of driftloop's ADWIN, Page-Hinkley and FET-online against river's ADWIN
   (and river's Page-Hinkley). Goal: median delay no worse than river's ADWIN at equal or
   fewer false alarms.

Writes a self-contained HTML with the figures (plotly inlined) next to the printed tables.

Usage: ``python benchmarks/bench_monitor.py [--full] [--rows N] [--features K] [--seeds S]``
(default 100,000 x 50 to stay under ~3 minutes on 2 shared cores; --full: 1,000,000 x 50).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.monitor.concept import make_detector  # noqa: E402
from components.monitor.drift import ReferenceSummary  # noqa: E402

ALPHA = 0.05


def make_frames(rows: int, features: int, seed: int = 0) -> tuple[pd.DataFrame, list[pd.DataFrame], set[str]]:
    """A reference and three current windows; a fifth of the features shift by a small amount."""
    rng = np.random.default_rng(seed)
    cols = [f"f{i:02d}" for i in range(features)]

    def draw() -> pd.DataFrame:
        data = {}
        for i, c in enumerate(cols):
            data[c] = rng.normal(size=rows) if i % 2 == 0 else rng.exponential(size=rows)
        return pd.DataFrame(data)

    ref = draw()
    drifted = set(cols[::5])
    windows = []
    for _ in range(3):
        cur = draw()
        for j, c in enumerate(sorted(drifted)):
            cur[c] = cur[c] + 0.005 * (j + 1)  # from barely to clearly detectable
        windows.append(cur)
    return ref, windows, drifted


def timed(fn: Any, repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def record(results: dict[str, tuple[float, set[str] | None]], name: str, seconds: float, flagged: set[str] | None) -> None:
    """Keep one measurement and show it at once (the full size takes minutes)."""
    results[name] = (seconds, flagged)
    print(f"  measured {name}: {seconds:.3f} s", flush=True)


def bench_feature_drift(rows: int, features: int, skip_evidently: bool) -> dict[str, Any]:
    print(f"\n== feature drift: {rows:,} rows x {features} features (reference and current), KS, Bonferroni alpha={ALPHA}")
    ref, windows, truth = make_frames(rows, features)
    cols = list(ref.columns)
    cur = windows[0]
    threshold = ALPHA / features
    results: dict[str, tuple[float, set[str] | None]] = {}

    # (e) the floor: sort the data once (reference and current columns), and the current alone
    t, _ = timed(lambda: [(np.sort(ref[c].to_numpy()), np.sort(cur[c].to_numpy())) for c in cols], repeat=2)
    record(results, "floor: np.sort of reference + current columns", t, None)
    t, _ = timed(lambda: [np.sort(cur[c].to_numpy()) for c in cols], repeat=2)
    record(results, "floor: np.sort of the current columns only", t, None)

    # (d) driftloop ReferenceSummary, fitted once, reused for each window
    fit_t, summary = timed(lambda: ReferenceSummary.fit(ref, cols, [], correction="bonferroni", p_value=ALPHA))
    per_window = []
    flagged_ours: set[str] = set()
    for w in windows:
        t, res = timed(lambda w=w: summary.test(w))
        per_window.append(t)
        if w is cur:
            flagged_ours = {r.feature for r in res if r.drift}
    record(results, "driftloop ReferenceSummary (reused, per window)", float(np.median(per_window)), flagged_ours)

    # (c) alibi-detect KSDrift built per window (the naive use)
    import alibi_detect.cd  # noqa: F401  (import time is not counted)

    def alibi_run() -> set[str]:
        from alibi_detect.cd import KSDrift

        det = KSDrift(ref.to_numpy(), p_val=ALPHA, correction="bonferroni")
        out = det.predict(cur.to_numpy(), drift_type="feature", return_p_val=True)["data"]
        return {c for c, p in zip(cols, out["p_val"], strict=True) if p < threshold}

    t, flagged_alibi = timed(alibi_run)
    record(results, "alibi-detect KSDrift (naive, per window)", t, flagged_alibi)

    # (b) plain scipy loop
    from scipy.stats import ks_2samp

    def scipy_run() -> set[str]:
        return {c for c in cols if ks_2samp(ref[c].to_numpy(), cur[c].to_numpy(), method="asymp").pvalue < threshold}

    t, flagged_scipy = timed(scipy_run)
    record(results, "scipy ks_2samp loop", t, flagged_scipy)

    # (a) Evidently's data drift preset
    if not skip_evidently:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        def evidently_run() -> set[str]:
            snap = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
            flagged = set()
            for m in snap.dict()["metrics"]:
                cfg = m.get("config", {})
                if cfg.get("type", "").endswith("ValueDrift") and isinstance(m.get("value"), float) and m["value"] >= cfg.get("threshold", np.inf):
                    flagged.add(cfg["column"])
            return flagged

        t, flagged_ev = timed(evidently_run)
        record(results, "Evidently DataDriftPreset", t, flagged_ev)

    ours = results["driftloop ReferenceSummary (reused, per window)"][0]
    print(f"{'method':52s} {'seconds':>9s} {'rows/s':>13s} {'x ours':>8s}  flagged")
    for name, (secs, flagged) in results.items():
        note = "" if flagged is None else f"{len(flagged)}"
        print(f"{name:52s} {secs:9.3f} {rows / secs:13,.0f} {secs / ours:8.2f}  {note}")
    print(f"summary fit (once per reference): {fit_t:.3f} s; per-window times: {', '.join(f'{t:.3f}' for t in per_window)}")
    agree = flagged_ours == flagged_alibi == flagged_scipy
    print(f"flagged features agree with alibi-detect: {agree} ({len(flagged_alibi)} flagged by alibi-detect; {len(truth)} shifted, {len(truth & flagged_ours)} of them flagged; {len(flagged_ours - truth)} unshifted flagged)")
    floor = results["floor: np.sort of reference + current columns"][0]
    strict = results["floor: np.sort of the current columns only"][0]
    print(f"ours / floor (sort the data once) = {ours / floor:.2f} (goal <= 10); ours / sort of the current window alone = {ours / strict:.2f}")
    if "Evidently DataDriftPreset" in results:
        print(f"Evidently / ours = {results['Evidently DataDriftPreset'][0] / ours:.1f} (goal >= 10); Evidently uses its own test (normed Wasserstein > 0.1 at this size), flagged {len(results['Evidently DataDriftPreset'][1] or set())}")
    return {"rows": rows, "features": features, "results": {k: v[0] for k, v in results.items()}, "agree": agree, "fit": fit_t}


def error_stream(kind: str, seed: int, n: int, onset: int, p0: float = 0.1, p1: float = 0.3, ramp: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = np.full(n, p0)
    if kind == "abrupt":
        p[onset:] = p1
    else:
        p[onset:] = np.minimum(p1, p0 + (p1 - p0) * (np.arange(n - onset) + 1) / ramp)
    return (rng.random(n) < p).astype(int)


class _River:
    def __init__(self, det: Any) -> None:
        self.det = det

    def update(self, x: float) -> bool:
        self.det.update(x)
        return bool(self.det.drift_detected)


def run_stream(det: Any, stream: np.ndarray, onset: int, reset_after: bool) -> tuple[int | None, int]:
    """(delay of the first alarm at or after onset, alarms before onset)."""
    false_alarms, delay = 0, None
    for i, x in enumerate(stream):
        if det.update(x):
            if i < onset:
                false_alarms += 1
                if reset_after:
                    det._reset()
            else:
                delay = i - onset
                break
    return delay, false_alarms


def bench_concept(seeds: int, n: int = 5000, onset: int = 2500) -> dict[str, Any]:
    from river.drift import ADWIN as RiverADWIN
    from river.drift import PageHinkley as RiverPH

    print(f"\n== concept drift: 0/1 error streams of {n} rows, error rate 0.1 -> 0.3 at row {onset}, {seeds} seeds each")
    rng = np.random.default_rng(12345)
    reference = (rng.random(2000) < 0.1).astype(int)  # the reference window's errors (for FET-online)
    makers = {
        "driftloop ADWIN (delta 0.002)": (lambda: make_detector("adwin", delta=0.002), False),
        "driftloop Page-Hinkley": (lambda: make_detector("page_hinkley"), False),
        "driftloop FET-online (ert 5000, window 100)": (lambda: make_detector("fet_online", reference, ert=5000, window_size=100), True),
        "river ADWIN (delta 0.002)": (lambda: _River(RiverADWIN(delta=0.002)), False),
        "river PageHinkley (defaults, mode=up)": (lambda: _River(RiverPH(mode="up")), False),
    }
    table: dict[str, dict[str, Any]] = {}
    for kind in ("abrupt", "gradual"):
        for name, (make, reset_after) in makers.items():
            delays, alarms, missed = [], 0, 0
            start = time.perf_counter()
            for seed in range(seeds):
                delay, fa = run_stream(make(), error_stream(kind, seed, n, onset), onset, reset_after)
                alarms += fa
                if delay is None:
                    missed += 1
                    delay = n - onset
                delays.append(delay)
            table[f"{kind}|{name}"] = {"delays": delays, "false_alarms": alarms, "missed": missed, "seconds": time.perf_counter() - start}
    print(f"{'drift':8s} {'detector':46s} {'median delay':>12s} {'p90 delay':>10s} {'missed':>7s} {'false alarms':>13s} {'seconds':>8s}")
    for key, row in table.items():
        kind, name = key.split("|")
        print(f"{kind:8s} {name:46s} {np.median(row['delays']):12.0f} {np.percentile(row['delays'], 90):10.0f} {row['missed']:7d} {row['false_alarms']:13d} {row['seconds']:8.2f}")
    for kind in ("abrupt", "gradual"):
        ours, theirs = table[f"{kind}|driftloop ADWIN (delta 0.002)"], table[f"{kind}|river ADWIN (delta 0.002)"]
        ok = np.median(ours["delays"]) <= np.median(theirs["delays"]) and ours["false_alarms"] <= theirs["false_alarms"]
        print(f"{kind}: driftloop ADWIN median delay {np.median(ours['delays']):.0f} vs river {np.median(theirs['delays']):.0f}, false alarms {ours['false_alarms']} vs {theirs['false_alarms']}: goal met = {ok}")
    return table


def write_html(feature: dict[str, Any], concept: dict[str, Any], path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"feature drift, {feature['rows']:,} x {feature['features']}: seconds per window (log)", "concept drift: detection delay (rows)"))
    names = list(feature["results"])
    fig.add_trace(go.Bar(x=[feature["results"][k] for k in names], y=names, orientation="h", name="seconds"), row=1, col=1)
    for key, row in concept.items():
        fig.add_trace(go.Box(y=row["delays"], name=key.replace("|", ": "), boxpoints="all"), row=1, col=2)
    fig.update_xaxes(type="log", row=1, col=1)
    fig.update_layout(height=650, width=1500, showlegend=False, title="driftloop monitor benchmark")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    print(f"\nfigures: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1,000,000 rows x 50 features")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--html", type=Path, default=Path(".driftloop/bench/bench_monitor.html"))
    args = parser.parse_args(argv)
    rows = args.rows or (1_000_000 if args.full else 100_000)
    start = time.perf_counter()
    feature = bench_feature_drift(rows, args.features, args.skip_evidently)
    concept = bench_concept(args.seeds)
    write_html(feature, concept, args.html)
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Feature-view check vs the model monitors on the same features, side by side in one run.

A feature view read by several models is checked once when it is materialized
(:func:`components.features.views_monitor.check_batch`: drift under the Bonferroni budget plus
null share, range, categories, volume and freshness). The peer is what the platform ran
before: each model's ``feature_drift`` monitor (:func:`components.monitor.engine.run_monitors`)
over the same features. Both fit their reference once and test one batch; the figure to read
is the ratio, and that the view check is paid once however many models read the view.

``python benchmarks/bench_feature_views.py [--rows 1000000] [--features 50] [--models 3]``
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import pandas as pd


def frames(rows: int, features: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Reference and batch: numeric features (5 of them categorical strings), one day each."""
    rng = np.random.default_rng(seed)
    numeric = [f"x{i}" for i in range(features - 5)]
    categorical = [f"c{i}" for i in range(5)]

    def one(day: str, shift: float) -> pd.DataFrame:
        data = {c: rng.normal(shift, 1.0, rows) for c in numeric}
        data.update({c: rng.choice(["a", "b", "c", "d"], rows) for c in categorical})
        ts = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(rng.random(rows) * 86_399, unit="s")
        return pd.DataFrame({"id": np.arange(rows), "event_timestamp": ts, **data})

    return one("2025-01-01", 0.0), one("2025-01-02", 0.02), numeric, categorical


def time_view_check(ref: pd.DataFrame, batch: pd.DataFrame, numeric: list[str], categorical: list[str]) -> tuple[float, float, object]:
    from components.features.view_checks import view_checks_from_dict
    from components.features.views_monitor import ViewProfile, check_batch

    check = view_checks_from_dict({"bench_features": {"reference": {"start": "2025-01-01", "end": "2025-01-02"},
                                                      "quality": {"max_staleness": "1d"}}}, "bench")["bench_features"]
    t = time.perf_counter()
    profile = ViewProfile.fit(ref, numeric, categorical, check, "2025-01-01", "2025-01-02")
    fit = time.perf_counter() - t
    t = time.perf_counter()
    report = check_batch(batch, profile, check, "2025-01-02", "2025-01-03", "bench_features")
    return fit, time.perf_counter() - t, report


def time_model_monitor(ref: pd.DataFrame, batch: pd.DataFrame, numeric: list[str], categorical: list[str]) -> float:
    from components.monitor.engine import run_monitors
    from components.policy import policy_from_dict

    policy = policy_from_dict({"model": "bench", "entity": "id", "label": "y", "features": numeric,
                               "categorical_features": categorical,
                               "monitors": [{"name": "drift", "type": "feature_drift", "psi": None}],
                               "actions": [{"when": ["drift"], "strategy": "full"}]})
    t = time.perf_counter()
    run_monitors(policy, ref, batch)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--models", type=int, default=3, help="models reading the view (the monitors' cost is per model)")
    args = parser.parse_args(argv)
    print(f"generating reference and batch: {args.rows:,} rows x {args.features} features ...", flush=True)
    ref, batch, numeric, categorical = frames(args.rows, args.features)
    tracemalloc.start()
    fit, check, report = time_view_check(ref, batch, numeric, categorical)
    view_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.reset_peak()
    print("view check done; running one model's feature_drift monitor on the same features ...", flush=True)
    monitor = time_model_monitor(ref, batch, numeric, categorical)
    monitor_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    view_total = fit + check
    print(f"\n{'what':46} {'seconds':>9} {'peak MiB':>9}")
    print(f"{'view check: profile fit (once per reference)':46} {fit:9.2f}")
    print(f"{'view check: one batch (drift + quality)':46} {check:9.2f}")
    print(f"{'view check: total':46} {view_total:9.2f} {view_peak:9.0f}")
    print(f"{'one model feature_drift monitor (fit + test)':46} {monitor:9.2f} {monitor_peak:9.0f}")
    print(f"{f'{args.models} models reading the view, each monitoring':46} {monitor * args.models:9.2f}")
    print(f"\nratio view check / one model monitor: {view_total / monitor:.2f}x; "
          f"/ {args.models} model monitors: {view_total / (monitor * args.models):.2f}x")
    print(f"batch verdict: {report.verdict} ({len(report.drifted_features)} drifted features of {args.features})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

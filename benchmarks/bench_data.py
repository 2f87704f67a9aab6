"""Benchmark scenario generation and point-in-time retrieval against simple peers, side by side.

1. Vectorised generators (numpy) vs a plain per-row Python loop that draws the same fraud
   distributions with ``random``: rows/s and the ratio.
2. Every scenario at 1,000,000 rows (the brief: "a few seconds").
3. Feast ``get_historical_features`` (via ``training_set``) vs ``pandas.merge_asof`` on the
   same label events: rows/s, ratio, and whether both return identical features.

Usage: ``python benchmarks/bench_data.py [--full]`` (--full: 5M-row generation, 200k-row join).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.data import fraud  # noqa: E402
from components.data.scenarios import SCENARIOS, generate  # noqa: E402


def fraud_loop(rows: int, seed: int = 0) -> pd.DataFrame:
    """The fraud generator written row by row in plain Python (the peer)."""
    rnd = random.Random(seed)
    spec = fraud.SPEC
    hours = list(spec.periods())
    weights = [1.0 + 0.8 * max(0.0, math.sin((h.hour - 8) / 24 * 2 * math.pi)) for h in hours]
    out = []
    for i in range(rows):
        start = rnd.choices(hours, weights)[0]
        ts = start + pd.Timedelta(seconds=rnd.randrange(3600))
        night = start.hour < 6
        is_fraud = rnd.random() < 0.02 * (2.2 if night else 1.0)
        adapted = is_fraud and start >= spec.onset
        old = is_fraud and not adapted
        mu_a, sd_a = (4.6, 1.1) if old else (3.0, 0.6) if adapted else (3.4, 0.9)
        mu_d, sd_d = (3.2, 1.2) if old else (1.2, 0.6) if adapted else (1.5, 0.9)
        cat_p = fraud._FRAUD_CAT if old else fraud._ADAPTED_CAT if adapted else fraud._LEGIT_CAT
        chan_p = [0.15, 0.1, 0.75] if old else [0.85, 0.13, 0.02] if adapted else [0.55, 0.2, 0.25]
        cat = rnd.choices(range(len(fraud.CATEGORIES)), cat_p)[0]
        lam = 2.5 if old else 3.5 if adapted else 0.8
        velocity, p, threshold = 0, 1.0, math.exp(-lam)  # Knuth's Poisson draw
        while True:
            p *= rnd.random()
            if p <= threshold:
                break
            velocity += 1
        out.append(
            {
                "transaction_id": i + 1,
                "event_timestamp": ts,
                "amount": round(math.exp(rnd.gauss(mu_a, sd_a)), 2),
                "distance_from_home_km": round(math.exp(rnd.gauss(mu_d, sd_d)), 2),
                "velocity_1h": velocity + 1,
                "hour_of_day": start.hour,
                "merchant_risk": round(min(1.0, max(0.0, float(fraud._CAT_RISK[cat]) + rnd.gauss(0, 0.08) + (0.1 if old else 0.0))), 4),
                "merchant_category": fraud.CATEGORIES[cat],
                "channel": rnd.choices(fraud.CHANNELS, chan_p)[0],
                "is_fraud": int(is_fraud),
                "label_timestamp": ts + pd.Timedelta(seconds=rnd.randrange(2 * 3600, 6 * 3600 + 1)),
            }
        )
    return pd.DataFrame(out).sort_values(["event_timestamp", "transaction_id"], ignore_index=True)


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0


def bench_generation(loop_rows: int) -> None:
    print(f"\n== generation: vectorised numpy vs per-row Python loop (fraud, {loop_rows:,} rows)")
    vec, t_vec = timed(generate, "fraud", rows=loop_rows, seed=0)
    loop, t_loop = timed(fraud_loop, loop_rows, 0)
    print(f"{'method':<22}{'seconds':>10}{'rows/s':>14}{'fraud rate':>12}")
    print(f"{'numpy (driftloop)':<22}{t_vec:>10.3f}{loop_rows / t_vec:>14,.0f}{vec.is_fraud.mean():>12.4f}")
    print(f"{'python loop':<22}{t_loop:>10.3f}{loop_rows / t_loop:>14,.0f}{loop.is_fraud.mean():>12.4f}")
    print(f"speed-up: {t_loop / t_vec:.1f}x (same distributions: mean amount {vec.amount.mean():.1f} vs {loop.amount.mean():.1f})")


def bench_scale(rows: int) -> None:
    print(f"\n== every scenario at {rows:,} rows")
    print(f"{'scenario':<10}{'rows':>12}{'seconds':>10}{'rows/s':>14}")
    for name in SCENARIOS:
        df, t = timed(generate, name, rows=rows, seed=0)
        print(f"{name:<10}{len(df):>12,}{t:>10.2f}{len(df) / t:>14,.0f}")


def bench_join(rows: int) -> None:
    from components.data.scenarios import write_scenario
    from components.features import apply, ingest, training_set
    from components.policy import load_policy
    from components.settings import Settings

    print(f"\n== point-in-time join: Feast get_historical_features vs pandas.merge_asof (churn, {rows:,} rows)")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(workdir=Path(tmp) / "work")
        apply(settings)
        write_scenario("churn", settings.data_dir, rows=rows, seed=0)
        ingest("churn", settings)
        policy = load_policy("churn")
        feast_df, t_feast = timed(training_set, policy, "2024-01-01", "2026-01-01", settings=settings)

        def asof() -> pd.DataFrame:
            feats = pd.read_parquet(settings.data_dir / "feast" / "churn_features.parquet")
            labels = pd.read_parquet(settings.data_dir / "feast" / "churn_labels.parquet")
            labels = labels[labels.label_timestamp <= pd.Timestamp("2026-01-01", tz="UTC")]
            out = pd.merge_asof(labels.sort_values("event_timestamp")[["customer_id", "event_timestamp", "churned"]], feats.sort_values("event_timestamp"), on="event_timestamp", by="customer_id", tolerance=pd.Timedelta(days=62))
            return out.sort_values(["event_timestamp", "customer_id"], ignore_index=True)

        pandas_df, t_pd = timed(asof)
    cols = list(feast_df.columns)
    same = feast_df.reset_index(drop=True).equals(pandas_df[cols].reset_index(drop=True).astype(feast_df.dtypes.to_dict()))
    n = len(feast_df)
    print(f"{'method':<28}{'seconds':>10}{'rows/s':>14}")
    print(f"{'Feast (file offline store)':<28}{t_feast:>10.3f}{n / t_feast:>14,.0f}")
    print(f"{'pandas.merge_asof':<28}{t_pd:>10.3f}{n / t_pd:>14,.0f}")
    print(f"Feast / pandas time: {t_feast / t_pd:.1f}x; identical features: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="bigger sizes (5M-row generation, 200k-row join)")
    args = parser.parse_args()
    np.seterr(all="ignore")
    bench_generation(20_000)
    bench_scale(5_000_000 if args.full else 1_000_000)
    bench_join(240_000 if args.full else 48_000)


if __name__ == "__main__":
    main()

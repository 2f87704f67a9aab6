"""Benchmark the prediction log's fsync policies side by side: what durability costs.

For each policy ("none", "interval", "always") on the same disk:

1. Streaming: N records through ``PredictionLogger.log`` with the background flusher (every
   0.2 s), then ``close()``: records/s until everything is written (and, for "interval" and
   "always", on disk), and the mean time of one ``log()`` call (the request path's cost).
2. Small batches: ``flush()`` after every B records (B = 1 and 10), the worst case for
   "always" (one fsync per batch): records/s.

The ratio column compares with "none". The filesystem matters (tmpfs makes fsync free):
pass ``--dir`` to measure on the volume the log will live on.

Usage: ``python benchmarks/bench_prediction_log.py [--records N] [--dir D] [--repeat R]``
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from serving.prediction_log import FSYNC_POLICIES, PredictionLogger, read_log  # noqa: E402

FEATURES = {"tenure_months": 14.0, "monthly_charges": 70.35, "support_calls": 2.0, "contract": "month-to-month", "customer_id": 1234}
T0 = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)


def streaming(root: Path, policy: str, records: int) -> tuple[float, float]:
    """(records/s from the first log() until close() returns, mean µs per log() call)."""
    log = PredictionLogger(root, "bench", fsync=policy, retention_days=0)
    t0 = time.perf_counter()
    for i in range(records):
        log.log(f"r{i}", "3", FEATURES, 0.42, when=T0)
    logged = time.perf_counter()
    log.close()
    done = time.perf_counter()
    return records / (done - t0), (logged - t0) / records * 1e6


def batches(root: Path, policy: str, records: int, batch: int) -> float:
    """records/s when every ``batch`` records are flushed synchronously."""
    log = PredictionLogger(root, "bench", flush_interval=3600, fsync=policy, fsync_interval=1.0, retention_days=0)
    t0 = time.perf_counter()
    for i in range(records):
        log.log(f"r{i}", "3", FEATURES, 0.42, when=T0)
        if (i + 1) % batch == 0:
            log.flush()
    log.close()
    return records / (time.perf_counter() - t0)


def filesystem(path: Path) -> str:
    try:
        out = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True, check=True).stdout.splitlines()[-1].split()
        return f"{out[1]} ({out[0]})"
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=50_000, help="records per streaming run")
    p.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    p.add_argument("--repeat", type=int, default=3, help="runs per cell; the median is shown")
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-predlog-", dir=args.dir))
    print(f"prediction log fsync policies: {args.records:,} records of {len(FEATURES)} features; {filesystem(base)}; median of {args.repeat}")
    rows: dict[str, list[float]] = {}
    try:
        for policy in FSYNC_POLICIES:
            cells: list[list[float]] = [[], [], [], []]
            for r in range(args.repeat):
                root = base / f"{policy}-{r}"
                rate, per_call = streaming(root / "stream", policy, args.records)
                assert len(read_log(root / "stream", "bench")) == args.records  # nothing lost
                cells[0].append(rate)
                cells[1].append(per_call)
                cells[2].append(batches(root / "b1", policy, min(args.records, 500), 1))
                cells[3].append(batches(root / "b10", policy, min(args.records, 5_000), 10))
                shutil.rmtree(root)
            rows[policy] = [sorted(c)[len(c) // 2] for c in cells]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    none = rows["none"]
    print(f"{'fsync':<9} {'streaming rec/s':>16} {'vs none':>8} {'log() µs':>9} {'flush/1 rec/s':>14} {'vs none':>8} {'flush/10 rec/s':>15} {'vs none':>8}")
    for policy, (rate, per_call, b1, b10) in rows.items():
        print(f"{policy:<9} {rate:>16,.0f} {rate / none[0]:>8.2f} {per_call:>9.1f} {b1:>14,.0f} {b1 / none[2]:>8.2f} {b10:>15,.0f} {b10 / none[3]:>8.2f}")


if __name__ == "__main__":
    main()

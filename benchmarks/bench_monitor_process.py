"""The commands users run, timed as whole processes on the same parquet files, side by side.

For each size (rows per window x 50 numeric features; reference and current parquet files,
the current with 5 shifted features), one run of each process:

- ``driftloop monitor`` with ``--reference`` (reads and sorts the reference),
- ``driftloop monitor --save-profile`` (the same, writing the reference profile once),
- ``driftloop monitor --profile`` (what a registered version or a saved profile gives: no
  reference read or sort),
- Evidently's ``DataDriftPreset`` script (``benchmarks/peers/evidently_drift.py``) in its own
  virtualenv ``.driftloop/bench-venvs/evidently`` (``benchmarks/peer_venv.py``),
- alibi-detect's ``KSDrift`` used naively (``benchmarks/peers/alibi_ks.py``),
- the floor: read both files and sort every feature column (``benchmarks/peers/read_sort_floor.py``).

5M rows run driftloop and the floor only. Each process is timed by wall clock and by its own
CPU time (user + system, from ``os.wait4`` like its peak memory ``ru_maxrss``): on a shared
machine the wall clock stretches with the other processes' load, the CPU time much less. Prints a table, the ratios to the floor and
to Evidently, and whether driftloop's flagged features equal alibi-detect's (the same KS
p-values with Bonferroni at 0.05). Goal (issue 14): at least 10x faster than Evidently and
within 3x of the floor at every size.

The load average (``os.getloadavg``) is printed before and after each size: on a shared
machine the seconds stretch with it, the ratios (all processes of a size run back to back)
much less. The run exits 1 when driftloop's flagged features differ from alibi-detect's.

Usage: ``python benchmarks/bench_monitor_process.py [--sizes 100000,1000000,5000000] [--no-evidently] [--peer-timeout S]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.peer_venv import ensure_peer_venv, venv_path  # noqa: E402

FEATURES = 50
SHIFTED = 5  # f00..f04 shifted by 0.05 sd in the current window
PEERS = ROOT / "benchmarks" / "peers"
EVIDENTLY_PACKAGES = ("evidently==0.7.23", "pandas<3", "pyarrow")  # evidently 0.7.23 does not import under pandas 3
BIG = 5_000_000  # driftloop vs the floor only
POLICY = {
    "model": "bench", "entity": "id", "label": "y", "features": [f"f{i:02d}" for i in range(FEATURES)],
    "monitors": [{"name": "features", "type": "feature_drift", "numeric_test": "ks", "correction": "bonferroni", "p_value": 0.05, "psi": None}],
    "actions": [{"when": ["features"], "action": "alert"}],
}


@dataclass
class Run:
    """One process: wall and CPU seconds, peak RSS in MB, flagged features (None: not a detector), or why it was skipped."""

    seconds: float = float("nan")
    peak_mb: float = float("nan")
    cpu: float = float("nan")  # user + system seconds: what the process itself costs, whatever the load
    flagged: list[str] | None = None
    skipped: str = ""


def write_window(path: Path, rows: int, seed: int, shift: float, batch: int = 500_000) -> None:
    """``rows`` x 50 normal features (the first ``SHIFTED`` moved by ``shift``) plus a timestamp, written in batches."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-01-01T00:00:00", "s").astype(np.int64) + (0 if shift == 0 else 10 * rows)
    writer = None
    for lo in range(0, rows, batch):
        n = min(batch, rows - lo)
        cols = {"event_timestamp": pa.array((start + np.arange(lo, lo + n)) * 1_000_000, pa.timestamp("us", tz="UTC"))}
        for i in range(FEATURES):
            cols[f"f{i:02d}"] = pa.array(rng.normal(shift if i < SHIFTED else 0.0, 1.0, n))
        table = pa.table(cols)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def timed(cmd: list[str], out_json: Path | None, env: dict[str, str] | None = None, timeout: float | None = None) -> Run:
    """Run ``cmd`` to completion (killed after ``timeout`` s); its wall time, its own peak RSS, and the flagged list it wrote."""
    import threading

    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        timer = threading.Timer(timeout, proc.kill) if timeout else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if timeout and seconds >= timeout:
            return Run(skipped=f"killed after {timeout:.0f} s (still running: slower than that)")
        if proc.returncode != 0:
            log.seek(0)
            tail = (log.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            return Run(skipped=f"exit {proc.returncode}: {tail[:160]}")
    run = Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)
    if out_json is not None and out_json.exists():
        run.flagged = json.loads(out_json.read_text())["flagged"]
    return run


def driftloop_flagged(report: Path) -> list[str]:
    """Features whose test drifted in a driftloop report."""
    data = json.loads(report.read_text())
    return sorted(r["feature"] for m in data["monitors"] for r in m["results"] if r["drift"] and r["test"] != "psi")


def load() -> str:
    """The 1, 5 and 15 minute load averages, for the table's heading."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def run_size(rows: int, tmp: Path, evidently: Path | None, why: str, peer_timeout: float | None = None) -> dict[str, Run]:
    """Every process on one pair of files."""
    ref, cur, policy = tmp / f"ref_{rows}.parquet", tmp / f"cur_{rows}.parquet", tmp / "bench.yaml"
    print(f"  writing {rows:,} x {FEATURES} reference and current parquet files ...", flush=True)
    started_load = load()
    write_window(ref, rows, seed=1, shift=0.0)
    write_window(cur, rows, seed=2, shift=0.05)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DRIFTLOOP_WORKDIR": str(tmp / "work")}
    python = sys.executable
    monitor = [python, "-m", "driftloop", "monitor", "--policy", str(policy), "--current", str(cur), "--no-notify"]
    profile = tmp / f"profile_{rows}.npz"
    runs: dict[str, Run] = {}

    def driftloop(name: str, *extra: str) -> None:
        out = tmp / f"out_{name.replace(' ', '_')}_{rows}"
        run = timed([*monitor, "--out", str(out), *extra], None, env)
        if not run.skipped:
            run.flagged = driftloop_flagged(out / "report.json")
        runs[name] = run
        print(f"   {name}: {run.seconds:.1f} s" if not run.skipped else f"   {name}: {run.skipped}", flush=True)

    runs["floor (read + sort)"] = timed([python, str(PEERS / "read_sort_floor.py"), str(ref), str(cur), str(tmp / "floor.json")], tmp / "floor.json")
    print(f"   floor: {runs['floor (read + sort)'].seconds:.1f} s", flush=True)
    driftloop("driftloop --reference", "--reference", str(ref))
    driftloop("driftloop --save-profile", "--reference", str(ref), "--save-profile", str(profile))
    driftloop("driftloop --profile", "--profile", str(profile))
    if rows < BIG:
        out = tmp / "alibi.json"
        runs["alibi-detect KSDrift (naive)"] = timed([python, str(PEERS / "alibi_ks.py"), str(ref), str(cur), str(out)], out, timeout=peer_timeout)
        print(f"   alibi-detect: {runs['alibi-detect KSDrift (naive)'].seconds:.1f} s {runs['alibi-detect KSDrift (naive)'].skipped}", flush=True)
        out = tmp / "evidently.json"
        runs["Evidently DataDriftPreset"] = (Run(skipped=why) if evidently is None
                                             else timed([str(evidently), str(PEERS / "evidently_drift.py"), str(ref), str(cur), str(out)], out, timeout=peer_timeout))
        print(f"   evidently: {runs['Evidently DataDriftPreset'].seconds:.1f} s {runs['Evidently DataDriftPreset'].skipped}", flush=True)
    for f in (ref, cur, profile):
        f.unlink(missing_ok=True)
    runs["_load"] = Run(skipped=f"load average {started_load} at the start, {load()} at the end")
    return runs


def table(rows: int, runs: dict[str, Run]) -> str:
    """One size's table: seconds, peak MB, x floor, Evidently / this, flagged features."""
    note = runs.pop("_load", Run()).skipped
    floor, floor_cpu = runs["floor (read + sort)"].seconds, runs["floor (read + sort)"].cpu
    evid, evid_cpu = runs.get("Evidently DataDriftPreset", Run()).seconds, runs.get("Evidently DataDriftPreset", Run()).cpu
    lines = [f"\n== {rows:,} rows x {FEATURES} features (one run each; {os.cpu_count()} cores; {note})",
             f"{'process':<30} {'seconds':>8} {'CPU s':>7} {'peak MB':>8} {'x floor':>8} {'CPU x floor':>11} {'Evidently/x':>11} {'CPU':>6}  flagged"]
    for name, r in runs.items():
        if r.skipped:
            lines.append(f"{name:<30} {'skipped: ' + r.skipped}")
            continue
        speedup = f"{evid / r.seconds:11.1f}" if np.isfinite(evid) else f"{'-':>11}"
        cpu_speedup = f"{evid_cpu / r.cpu:6.1f}" if np.isfinite(evid_cpu) else f"{'-':>6}"
        flagged = "-" if r.flagged is None else f"{len(r.flagged)}: {','.join(r.flagged[:8])}{' ...' if len(r.flagged) > 8 else ''}"
        lines.append(f"{name:<30} {r.seconds:8.1f} {r.cpu:7.1f} {r.peak_mb:8.0f} {r.seconds / floor:8.2f} {r.cpu / floor_cpu:11.2f} {speedup} {cpu_speedup}  {flagged}")
    alibi = runs.get("alibi-detect KSDrift (naive)")
    if alibi is not None and alibi.flagged is not None:
        ours = [runs[n].flagged for n in runs if n.startswith("driftloop") and not runs[n].skipped]
        same = bool(ours) and all(f == alibi.flagged for f in ours)
        lines.append(f"driftloop's flagged features equal alibi-detect's: {same}")
    return "\n".join(lines)


def flagged_differ(runs: dict[str, Run]) -> bool:
    """True when a driftloop run flagged other features than alibi-detect's KSDrift on the same files."""
    alibi = runs.get("alibi-detect KSDrift (naive)")
    if alibi is None or alibi.flagged is None:
        return False
    return any(r.flagged != alibi.flagged for n, r in runs.items() if n.startswith("driftloop") and not r.skipped)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=f"100000,1000000,{BIG}", help="rows per window, comma-separated")
    parser.add_argument("--no-evidently", action="store_true", help="skip the Evidently column")
    parser.add_argument("--peer-timeout", type=float, default=1800, help="kill a peer process after this many seconds (reported as slower than that)")
    args = parser.parse_args(argv)
    import yaml

    evidently, why = (None, "--no-evidently") if args.no_evidently else ensure_peer_venv(venv_path("evidently"), EVIDENTLY_PACKAGES)
    if evidently is None:
        print(f"  Evidently will be skipped: {why}", flush=True)
    ROOT.joinpath(".driftloop").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-monitor-process-", dir=ROOT / ".driftloop") as folder:
        tmp = Path(folder)
        (tmp / "bench.yaml").write_text(yaml.safe_dump(POLICY))
        differ = False
        for rows in (int(s) for s in args.sizes.split(",") if s.strip()):
            runs = run_size(rows, tmp, evidently, why, args.peer_timeout)
            print(table(rows, runs), flush=True)
            differ |= flagged_differ(runs)
    if differ:
        print("FAILED: driftloop flagged other features than alibi-detect", flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

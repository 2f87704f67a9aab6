"""Benchmark: what kfp.local costs on top of the library, side by side in one invocation.

1. Per-task overhead: a pipeline of N trivial tasks run by ``kfp.local.SubprocessRunner``
   vs calling the same Python function N times directly.
2. The monitor pipeline over one window (churn, reference 2024, current 2025-09) vs
   ``components.monitor.engine.run_monitors`` called directly on the same frames.
   Goal: the monitor pipeline finishes locally in under 30 s on 2 cores.

Usage: ``python benchmarks/bench_pipelines.py [--tasks N] [--rows N] [--full]``.
"""

# No "from __future__ import annotations": KFP reads the component signature's real types.

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from kfp import dsl  # noqa: E402

from components.kfp import IMAGE  # noqa: E402


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def increment(x: int) -> int:
    return x + 1


def chain(n: int):  # noqa: ANN201 - a KFP pipeline object
    @dsl.pipeline(name="bench-chain")
    def bench_chain(x: int = 0) -> int:
        task = increment(x=x)
        for _ in range(n - 1):
            task = increment(x=task.output)
        return task.output

    return bench_chain


def bench_overhead(n: int) -> tuple[float, float]:
    from pipelines.local import init_local, local_env, quiet_local_warnings

    with tempfile.TemporaryDirectory() as tmp:
        init_local(Path(tmp) / "root")
        with local_env(Path(tmp)), quiet_local_warnings():
            started = time.perf_counter()
            out = chain(n)(x=0)
            local = time.perf_counter() - started
    assert out.output == n, out.output
    started = time.perf_counter()
    x = 0
    for _ in range(n):
        x = increment.python_func(x=x)
    direct = time.perf_counter() - started
    return local, direct


def bench_monitor(rows: int) -> tuple[float, float, str]:
    from components.data.scenarios import generate
    from components.kfp.runtime import policy_text, resolve_policy
    from components.monitor.engine import run_monitors
    from components.training.trainers import train_model
    from pipelines.local import run_pipeline

    policy = resolve_policy("churn")
    frame = generate("churn", rows=rows, seed=0)
    ts = frame[policy.timestamp]
    # Predictions as a prediction log would carry them, so neither side needs the registry.
    frame[policy.prediction] = train_model(policy, frame[ts < "2025-01-01"]).predict(frame)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "churn.parquet"
        frame.to_parquet(source, index=False)
        run = run_pipeline("monitor", policy_text("churn"), workdir=Path(tmp) / "work", source=str(source),
                           params={"reference_start": "2024-01-01", "reference_end": "2025-01-01", "current_start": "2025-09-01", "current_end": "2025-10-01"})
    reference = frame[ts < "2025-01-01"]
    current = frame[(ts >= "2025-09-01") & (ts < "2025-10-01")]
    started = time.perf_counter()
    report = run_monitors(policy, reference, current)
    direct = time.perf_counter() - started
    assert report.decision["action"] == run.outputs["Output"], (report.decision["action"], run.outputs)
    return run.seconds, direct, str(run.outputs["Output"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--rows", type=int, default=12000, help="churn rows (rounded to whole months)")
    parser.add_argument("--full", action="store_true", help="20 tasks and the default 48,000 churn rows")
    args = parser.parse_args()
    tasks, rows = (20, 48000) if args.full else (args.tasks, args.rows)

    local, direct = bench_overhead(tasks)
    print(f"per-task overhead ({tasks} trivial tasks in a chain)")
    print(f"  kfp.local SubprocessRunner : {local:8.2f} s  ({local / tasks:.2f} s/task)")
    print(f"  direct function calls      : {direct:8.5f} s  ({direct / tasks * 1e6:.1f} us/task)")
    print(f"  overhead per task          : {(local - direct) / tasks:8.2f} s   ratio local/direct {local / max(direct, 1e-9):,.0f}x")

    seconds, lib, action = bench_monitor(rows)
    print(f"monitor over one window (churn, {rows} rows, current 2025-09)")
    print(f"  monitor pipeline (kfp.local): {seconds:7.2f} s  decision {action}")
    print(f"  run_monitors directly       : {lib:7.2f} s")
    print(f"  ratio pipeline/direct       : {seconds / lib:7.1f}x   goal < 30 s: {'met' if seconds < 30 else 'MISSED'}")


if __name__ == "__main__":
    main()

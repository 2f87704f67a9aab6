"""Fault rows of the prediction log (issue 13's matrix): 10,000 event pairs into the log sink
(threads and memory bounded, nothing lost) and a disk-full write (503 meanwhile, nothing
lost once space returns), in process and with a real file-size limit in a subprocess.

Each test prints one ``FIGURES`` line (run with ``-s``) and stores its row of the matrix in
``test-artifacts/faults/`` (tests/serving/fault_report.py renders docs/reliability.md's table).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fault_report import write_row
from serving_fixtures import REPO_ROOT
from test_log_sink import event
from test_prediction_log import _disk_full

from serving.log_sink import create_app
from serving.prediction_log import read_log

pytestmark = pytest.mark.faults

REQ = {"instances": [{"x": 1.5, "customer_id": 7, "plan": "basic"}]}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _post(app: Any, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    """One request straight through the ASGI app (no HTTP client: 20,000 of them stay quick)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST" if body else "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in {**headers, "content-length": str(len(body))}.items()],
             "client": ("127.0.0.1", 1), "server": ("sink", 80)}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _send_pairs(app: Any, first: int, count: int, health: list[int] | None = None) -> list[int]:
    """Post ``count`` request/response pairs (the response first for odd ids); the statuses."""
    codes: list[int] = []
    for i in range(first, first + count):
        halves = [("request", REQ), ("response", {"predictions": [i % 100 / 100], "model_version": "3"})]
        for kind, body in halves[:: -1 if i % 2 else 1]:
            headers, content = event(kind, f"ev{i}", body)
            codes.append(await _post(app, "/", headers, content))
        if health is not None and i % 50 == 0:
            health.append(await _post(app, "/healthz", {}))
            await asyncio.sleep(0.005)  # let the flusher run between bursts
    return codes


def test_10000_event_pairs_keep_threads_and_memory_bounded(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    import gc

    started = time.monotonic()
    app = create_app(tmp_path / "log", flush_interval=0.05)
    threads_before = threading.active_count()
    codes = asyncio.run(_send_pairs(app, 0, 1_000))
    rss_1k = _rss_kib()
    t0 = time.perf_counter()
    codes += asyncio.run(_send_pairs(app, 1_000, 8_000))
    pairs_per_s = 8_000 / (time.perf_counter() - t0)
    rss_9k = _rss_kib()
    gc.collect()
    tracemalloc.start()  # traced for the last 1,000 pairs only: tracing slows every allocation ~6x
    try:
        last = asyncio.run(_send_pairs(app, 9_000, 1_000))
        time.sleep(0.2)  # a flush empties the buffer
        gc.collect()
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    codes += last  # after measuring: this list is the test's, not the sink's
    threads = threading.active_count() - threads_before
    app.state.sink.close()  # type: ignore[attr-defined]
    df = read_log(tmp_path / "log", "churn")
    lost = 10_000 - len(df)
    print(f"\nFIGURES sink_10000_pairs: statuses={sorted(set(codes))} threads_added={threads} lost={lost} "
          f"rss_growth_1k_to_9k_kib={rss_9k - rss_1k} retained_by_last_1k_kib={retained // 1024} peak_last_1k_kib={peak // 1024} "
          f"pairs_per_s={pairs_per_s:.0f} unpaired={df.attrs['unpaired_halves']}")
    write_row(request.node.nodeid, "10,000 request/response pairs into one log sink", order=80, backend="log sink (ASGI app)",
              end_state=f"{threads} thread added in all; memory retained by the last 1,000 pairs {retained // 1024} KiB, traced peak "
                        f"{peak / 2**20:.1f} MiB, RSS +{(rss_9k - rss_1k) / 1024:.1f} MiB from pair 1,000 to 9,000; {pairs_per_s:,.0f} pairs/s",
              aliases="-", requests=len(codes), failed_outside_fault=sum(c != 202 for c in codes), logged=10_000, lost=lost,
              seconds=round(time.monotonic() - started, 1))
    assert set(codes) == {202} and lost == 0 and df["request_id"].is_unique and df.attrs["unpaired_halves"] == 0
    assert threads == 1  # one flusher for the one model (before: one thread per pair)
    # memory does not grow with the number of events
    assert rss_9k - rss_1k < 8 * 1024 and retained < 128 * 1024 and peak < 8 * 1024 * 1024


def test_disk_full_reports_503_and_loses_nothing_once_space_returns(request: pytest.FixtureRequest, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    state = {"full": 1}
    _disk_full(monkeypatch, state, partial=True)  # the first failure is a short write, then ENOSPC
    app = create_app(tmp_path / "log", flush_interval=0.01)
    health: list[int] = []
    codes = asyncio.run(_send_pairs(app, 0, 500, health))
    time.sleep(1.0)  # the disk stays full a while: the flusher keeps retrying
    health.append(asyncio.run(_post(app, "/healthz", {})))
    assert 503 in health and health[-1] == 503  # /healthz says so while the disk is full
    failures = state["failures"]
    state["full"] = 0
    codes += asyncio.run(_send_pairs(app, 500, 500, health))
    deadline = time.monotonic() + 10
    sink = app.state.sink  # type: ignore[attr-defined]
    while sink.health()[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.health()[0] == 200
    sink.close()
    df = read_log(tmp_path / "log", "churn")
    lost = 1_000 - len(df)
    print(f"\nFIGURES sink_disk_full: failed_writes={failures} healthz={health.count(503)}x503,{health.count(200)}x200 "
          f"statuses={sorted(set(codes))} lost={lost} duplicates={int(df['request_id'].duplicated().sum())} "
          f"torn_lines_skipped={df.attrs['skipped_lines']}")
    write_row(request.node.nodeid, "disk full during log-sink writes: a short write, then ENOSPC for over a second", order=81,
              backend="log sink (ASGI app)", end_state=f"{failures} failed writes retried; `/healthz` 503 on {health.count(503)} of "
              f"{len(health)} probes, 200 after recovery; {df.attrs['skipped_lines']} torn line skipped and counted", aliases="-",
              requests=len(codes), failed_outside_fault=sum(c != 202 for c in codes), logged=1_000, lost=lost,
              seconds=round(time.monotonic() - started, 1))
    assert set(codes) == {202} and lost == 0 and df["request_id"].is_unique


CHILD = textwrap.dedent("""
    import json, resource, signal, sys, time
    from serving.prediction_log import PredictionLogger

    log_dir, n, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    log = PredictionLogger(log_dir, "m", flush_interval=0.01, fsync="none", retention_days=0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # the "disk" holds `limit` bytes per file
    for i in range(n):
        log.log(f"r{i}", "1", {"x": float(i), "note": "y" * 40}, 0.5)
        time.sleep(0.0005)
    deadline = time.monotonic() + 10
    while log.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    full = {"healthy": log.healthy, "last_error": log.last_error, "pending": log.pending}
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space returns
    deadline = time.monotonic() + 10
    while (log.pending or not log.healthy) and time.monotonic() < deadline:
        time.sleep(0.01)
    log.close()
    print(json.dumps({"while_full": full, "healthy": log.healthy, "dropped": log.dropped, "written": log.written}))
""")


def test_file_size_limit_in_a_real_process_loses_nothing(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    started = time.monotonic()
    n, limit = 2_000, 16_384
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(n), str(limit)], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    df = read_log(tmp_path, "m")
    lost = n - len(df)
    print(f"\nFIGURES rlimit_fsize: while_full={result['while_full']} dropped={result['dropped']} lost={lost} "
          f"duplicates={int(df['request_id'].duplicated().sum())} torn_lines_skipped={df.attrs['skipped_lines']}")
    write_row(request.node.nodeid, "file-size limit (`RLIMIT_FSIZE` 16 KiB: real `EFBIG` writes in a subprocess), then lifted", order=82,
              backend="prediction log (a real process)", end_state=f"`healthy` {result['while_full']['healthy']}, `last_error` "
              f"\"{result['while_full']['last_error']}\", {result['while_full']['pending']:,} records held; all written once lifted, "
              f"`dropped` {result['dropped']}", aliases="-", logged=n, lost=lost, seconds=round(time.monotonic() - started, 1))
    assert result["while_full"]["healthy"] is False and "File too large" in result["while_full"]["last_error"]
    assert result["while_full"]["pending"] > 0 and result["healthy"] is True and result["dropped"] == 0
    assert lost == 0 and df["request_id"].is_unique

"""The prediction log: concurrent writers never interleave lines, time filters, torn lines,
and both label joins (request id; entity + nearest time)."""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from components.errors import DataError
from serving.prediction_log import PredictionLogger, join_labels, read_log

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)


def _write(args: tuple[str, int, int]) -> None:
    log_dir, writer, n = args
    log = PredictionLogger(log_dir, "m", flush_interval=0.01)
    for i in range(n):
        log.log(f"w{writer}-{i}", str(writer), {"x": float(i), "customer_id": i, "note": "y" * 200}, i / n, when=T0)
    log.close()


def test_concurrent_processes_append_whole_lines(tmp_path: Path) -> None:
    with mp.get_context("fork").Pool(4) as pool:
        pool.map(_write, [(str(tmp_path), w, 1500) for w in range(4)])
    files = list((tmp_path / "m").glob("*/*.jsonl"))
    assert len(files) == 1  # one hourly file shared by all writers
    df = read_log(tmp_path, "m")
    assert len(df) == 6000 and df["request_id"].is_unique
    assert df.groupby("model_version").size().to_dict() == {"0": 1500, "1": 1500, "2": 1500, "3": 1500}


def test_time_filters_hour_files_and_torn_lines(tmp_path: Path) -> None:
    log = PredictionLogger(tmp_path, "m")
    for h in range(5):
        log.log(f"r{h}", "1", {"x": h}, 0.5, when=T0 + timedelta(hours=h))
    log.close()
    assert len(list((tmp_path / "m").glob("*/*.jsonl"))) == 5
    some = read_log(tmp_path, "m", start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=3))
    assert list(some["request_id"]) == ["r1", "r2"]
    last = sorted((tmp_path / "m").glob("*/*.jsonl"))[-1]
    with last.open("a") as f:
        f.write('{"request_id": "torn", "times')  # a writer killed mid-line
    assert "torn" not in set(read_log(tmp_path, "m")["request_id"])


def test_join_by_request_id_and_by_entity_time(tmp_path: Path) -> None:
    log = PredictionLogger(tmp_path, "m")
    for i in range(4):
        log.log(f"r{i}", "2", {"x": float(i), "customer_id": 100 + i}, 0.1 * i, when=T0 + timedelta(minutes=10 * i))
    log.close()
    df = read_log(tmp_path, "m")
    by_id = join_labels(df, pd.DataFrame({"request_id": ["r1", "r3", "zz"], "churned": [1, 0, 1]}), timestamp_col="event_timestamp")
    assert list(by_id["request_id"]) == ["r1", "r3"] and list(by_id["churned"]) == [1, 0]
    assert {"event_timestamp", "prediction", "model_version", "x"} <= set(by_id.columns)
    labels = pd.DataFrame({"customer_id": [100, 102, 103], "label_time": [T0 + timedelta(minutes=5), T0 + timedelta(minutes=21), T0 + timedelta(hours=5)],
                           "churned": [0, 1, 1]})
    by_entity = join_labels(df, labels, on=("customer_id", "label_time"), tolerance="30min")
    # 103's label is 4.5 h away: outside the tolerance, so that prediction stays unlabelled
    assert list(by_entity["customer_id"]) == [100, 102] and list(by_entity["churned"]) == [0, 1]
    with pytest.raises(DataError, match="'request_id' is missing from the labels frame"):
        join_labels(df, pd.DataFrame({"id": [1]}))

"""The prediction log: concurrent writers never interleave lines, time filters, torn lines,
and both label joins (request id; entity + time, backward only)."""

from __future__ import annotations

import multiprocessing as mp
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from components.errors import DataError
from serving.prediction_log import (
    MAX_CLIENT_REQUEST_ID,
    PredictionLogger,
    client_request_id,
    join_labels,
    new_request_id,
    read_log,
)

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


# --- server fields, torn lines, write errors, fsync, retention, joins (issue 13) ---

def test_server_fields_win_over_client_keys(tmp_path: Path) -> None:
    log = PredictionLogger(tmp_path, "m")
    client = {"x": 1.0, "request_id": "evil", "client_request_id": "forged", "model_version": "99", "prediction": 1.0,
              "timestamp": "garbage", "model": "other"}
    log.log("r1", "3", client, 0.25, when=T0, client_request_id="sent-by-client")
    log.log("r2", "3", {"x": 2.0}, 0.5, when=T0 + timedelta(minutes=1))
    log.close()
    df = read_log(tmp_path, "m")
    assert list(df["request_id"]) == ["r1", "r2"] and list(df["model_version"]) == ["3", "3"]
    assert list(df["prediction"]) == [0.25, 0.5] and set(df["model"]) == {"m"}
    assert df["timestamp"].iloc[0] == pd.Timestamp(T0)
    # client_request_id is the server's record of the header, a plain column: an instance key cannot set it
    assert df.loc[0, "client_request_id"] == "sent-by-client" and df.loc[1, "client_request_id"] is None
    # the client's values are kept under the prefix (again while the name is taken), not lost
    kept = ["client_client_request_id", "client_client_client_request_id", "client_model_version", "client_timestamp", "client_model"]
    assert df.loc[0, kept].tolist() == ["evil", "forged", "99", "garbage", "other"]


def test_server_ids_are_fresh_and_client_ids_are_only_limited_data() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == 2000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)  # ids sort by creation time (the millisecond prefix)
    assert client_request_id("x" * 10_000) == "x" * MAX_CLIENT_REQUEST_ID
    assert client_request_id("../x") == "../x" and client_request_id("héllo✓") == "héllo✓"
    assert client_request_id("a\r\nb\x00") == "a??b?" and client_request_id("") is None and client_request_id(7) is None


def test_a_bad_timestamp_record_is_skipped_not_the_hour(tmp_path: Path) -> None:
    log = PredictionLogger(tmp_path, "m")
    log.log("good", "1", {"x": 1.0}, 0.5, when=T0)
    log.close()
    path = next((tmp_path / "m").glob("*/*.jsonl"))
    with path.open("a") as f:  # a record from an old writer whose timestamp a client set
        f.write('{"request_id":"bad","timestamp":"garbage","model":"m","model_version":"1","features":{},"prediction":0.1}\n')
    df = read_log(tmp_path, "m")
    assert list(df["request_id"]) == ["good"] and df.attrs["skipped_lines"] == 1


def test_torn_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    first = PredictionLogger(tmp_path, "m")
    first.log("r0", "1", {"x": 0.0}, 0.1, when=T0)
    first.close()
    path = next((tmp_path / "m").glob("*/*.jsonl"))
    with path.open("a") as f:
        f.write('{"request_id":"torn","times')  # a writer killed mid-line, no newline
    second = PredictionLogger(tmp_path, "m")
    second.log("r1", "1", {"x": 1.0}, 0.2, when=T0)
    second.close()
    df = read_log(tmp_path, "m")
    assert list(df["request_id"]) == ["r0", "r1"] and df.attrs["skipped_lines"] == 1
    # a writer that appended straight onto the torn line (no fresh-line guard) is recovered too
    with path.open("a") as f:
        f.write('{"request_id":"torn2","ti{"request_id":"r2","timestamp":"2026-03-01T10:40:00+00:00","model":"m","model_version":"1","features":{"x":2.0},"prediction":0.3}\n')
        f.write("not json at all\n")
    df = read_log(tmp_path, "m")
    assert list(df["request_id"]) == ["r0", "r1", "r2"] and df.attrs["skipped_lines"] == 3


def _disk_full(monkeypatch: pytest.MonkeyPatch, state: dict[str, int], partial: bool = False) -> None:
    """Make prediction-log writes fail with ENOSPC while ``state["full"]``; ``partial``: write
    half the bytes first, as a disk that fills mid-write does."""
    import errno

    import serving.prediction_log as pl

    real = pl._write

    def write(fd: int, data: bytes) -> int:
        if state["full"]:
            state["failures"] = state.get("failures", 0) + 1
            if partial and len(data) > 1 and state["failures"] == 1:
                return real(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(pl, "_write", write)


@pytest.mark.parametrize("partial", [False, True], ids=["refused", "short-write"])
def test_flusher_survives_a_full_disk_and_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, partial: bool) -> None:
    state = {"full": 1}
    _disk_full(monkeypatch, state, partial)
    log = PredictionLogger(tmp_path, "m", flush_interval=0.01)
    for i in range(50):
        log.log(f"r{i}", "1", {"x": float(i)}, 0.5, when=T0)
    deadline = time.monotonic() + 5
    while log.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not log.healthy and "No space left" in (log.last_error or "")
    assert log._thread.is_alive()  # the flusher keeps retrying
    state["full"] = 0
    deadline = time.monotonic() + 10
    while (log.pending or not log.healthy) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log.healthy and log.last_error is None
    log.close()
    df = read_log(tmp_path, "m")
    assert sorted(df["request_id"]) == sorted(f"r{i}" for i in range(50)) and df["request_id"].is_unique
    assert df.attrs["skipped_lines"] == (1 if partial else 0)  # the torn half-write, skipped and counted


def test_buffer_is_bounded_while_writes_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _disk_full(monkeypatch, {"full": 1})
    log = PredictionLogger(tmp_path, "m", flush_interval=3600, max_buffer=10)  # flushed by hand below
    for i in range(25):
        log.log(f"r{i}", "1", {"x": 1.0}, 0.5, when=T0)
    assert log.pending == 10 and log.dropped == 15
    with pytest.raises(OSError, match="No space left"):
        log.flush()
    assert not log.healthy and log.pending == 10  # the newest 10 kept for the retry
    log.close(timeout=0.1)


@pytest.mark.parametrize(("policy", "expect"), [("none", 0), ("interval", 1), ("always", 3)])
def test_fsync_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, expect: int) -> None:
    import serving.prediction_log as pl

    calls: list[int] = []
    real = pl.os.fsync
    monkeypatch.setattr(pl.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    log = PredictionLogger(tmp_path, "m", flush_interval=3600, fsync=policy, fsync_interval=3600)
    for i in range(3):
        log.log(f"r{i}", "1", {"x": 1.0}, 0.5, when=T0)
        log.flush()
    log.close()  # "interval" syncs what is left at close
    assert len(calls) == expect


def test_fsync_and_retention_come_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from components.errors import ConfigError
    from components.settings import Settings

    monkeypatch.setenv("DRIFTLOOP_LOG_FSYNC", "always")
    monkeypatch.setenv("DRIFTLOOP_LOG_RETENTION_DAYS", "2.5")
    log = PredictionLogger(tmp_path, "m")
    assert (log.fsync, log.retention_days) == ("always", 2.5)
    log.close()
    with pytest.raises(ConfigError, match="DRIFTLOOP_LOG_FSYNC='sometimes'"):
        Settings.from_env({"DRIFTLOOP_LOG_FSYNC": "sometimes"})
    with pytest.raises(ConfigError, match="DRIFTLOOP_LOG_RETENTION_DAYS='-1'"):
        Settings.from_env({"DRIFTLOOP_LOG_RETENTION_DAYS": "-1"})
    with pytest.raises(ConfigError, match="fsync policy 'sometimes'"):
        PredictionLogger(tmp_path, "m", fsync="sometimes")


def test_retention_removes_old_hour_files(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old = PredictionLogger(tmp_path, "m", retention_days=0)
    for age in (timedelta(days=10), timedelta(days=3), timedelta(hours=1)):
        old.log(f"age-{age.days}d{age.seconds // 3600}h", "1", {"x": 1.0}, 0.5, when=now - age)
    old.close()
    assert len(list((tmp_path / "m").glob("*/*.jsonl"))) == 3
    log = PredictionLogger(tmp_path, "m", flush_interval=0.01, retention_days=2)
    deadline = time.monotonic() + 5
    while len(list((tmp_path / "m").glob("*/*.jsonl"))) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    log.close()
    assert list(read_log(tmp_path, "m")["request_id"]) == ["age-0d1h"]
    assert len(list((tmp_path / "m").iterdir())) == 1  # empty day folders go too


def test_model_names_never_leave_the_log_folder(tmp_path: Path) -> None:
    for bad in ("../x", "a/b", ".hidden", "", "/abs"):
        with pytest.raises(DataError, match="is not a valid name"):
            PredictionLogger(tmp_path, bad)
        with pytest.raises(DataError):
            read_log(tmp_path, bad)


def test_halves_are_paired_by_id_across_writers_and_hours(tmp_path: Path) -> None:
    a = PredictionLogger(tmp_path, "m", writer="sink-a")
    b = PredictionLogger(tmp_path, "m", writer="sink-b")
    edge = datetime(2026, 3, 1, 10, 59, 59, 900000, tzinfo=UTC)
    a.log_event("e1", "request", {"instances": [{"x": 1.0}, {"x": 2.0}]}, when=edge)
    b.log_event("e1", "response", {"predictions": [0.1, 0.9], "model_version": "5"}, when=edge + timedelta(seconds=0.2))
    b.log_event("e2", "response", {"predictions": [0.4]}, when=T0)  # its request never came
    a.log_event("e3", "request", {"inputs": [{"name": "x", "data": [3.0]}]}, when=T0)
    b.log_event("e3", "response", {"outputs": [{"name": "p", "data": [0.7]}]}, when=T0)
    a.log_event("e3", "request", {"inputs": [{"name": "x", "data": [3.0]}]}, when=T0)  # resent: counted once
    a.close()
    b.close()
    assert {p.name for p in (tmp_path / "m").glob("*/*.jsonl")} == {"10.sink-a.jsonl", "10.sink-b.jsonl", "11.sink-b.jsonl"}
    df = read_log(tmp_path, "m")
    assert list(df["request_id"]) == ["e3", "e1-0", "e1-1"] and list(df["prediction"]) == [0.7, 0.1, 0.9]
    assert list(df["model_version"]) == ["", "5", "5"] and df.attrs["unpaired_halves"] == 1
    # an hour filter keeps the pair whose response landed in the next hour's file
    assert list(read_log(tmp_path, "m", start=edge - timedelta(minutes=1), end=edge + timedelta(seconds=0.1))["request_id"]) == ["e1-0", "e1-1"]


def test_sink_rows_are_keyed_by_the_server_id_not_the_event_id(tmp_path: Path) -> None:
    log = PredictionLogger(tmp_path, "m", writer="sink-a")
    # two exchanges whose clients sent the same x-request-id: two records, keyed by the predictor's ids
    for event, server in (("e1", "s1"), ("e2", "s2")):
        log.log_event(event, "request", {"instances": [{"x": 1.0}, {"x": 2.0}]}, when=T0, client_request_id="same")
        log.log_event(event, "response", {"predictions": [0.1, 0.9], "model_version": "5", "id": server}, when=T0)
    # a client that chose the event id of another exchange: which request belongs to which
    # response is unknown, so neither is logged (rather than a wrong prediction under a label)
    log.log_event("e3", "request", {"instances": [{"x": 3.0}]}, when=T0)
    log.log_event("e3", "response", {"predictions": [0.3], "model_version": "5", "id": "s3"}, when=T0)
    log.log_event("e3", "request", {"instances": [{"x": 4.0}]}, when=T0)
    log.log_event("e3", "response", {"predictions": [0.4], "model_version": "5", "id": "s4"}, when=T0)
    log.close()
    df = read_log(tmp_path, "m")
    assert sorted(df["request_id"]) == ["s1-0", "s1-1", "s2-0", "s2-1"] and set(df["client_request_id"]) == {"same"}
    assert df.attrs["conflicting_events"] == 1 and df.attrs["unpaired_halves"] == 0
    labels = pd.DataFrame({"request_id": ["s2-1", "same"], "y": [1, 0]})
    assert join_labels(df, labels)[["request_id", "y"]].to_dict("records") == [{"request_id": "s2-1", "y": 1}]


def test_join_by_id_dedupes_ids() -> None:
    log = pd.DataFrame({"request_id": ["a", "a", "b"], "timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:05", "2026-01-01 11:00"], utc=True),
                        "model_version": ["1", "1", "1"], "prediction": [0.9, 0.8, 0.2]})
    labels = pd.DataFrame({"request_id": ["a", "b", "b"], "y": [1, 1, 0]})
    out = join_labels(log, labels)
    assert list(out["request_id"]) == ["a", "b"] and list(out["prediction"]) == [0.9, 0.2]
    assert list(out["y"]) == [1, 0]  # a relabelled id takes its last label


def test_join_by_entity_attaches_labels_only_to_earlier_predictions() -> None:
    t = pd.Timestamp(T0)
    log = pd.DataFrame({"request_id": ["p1", "p2", "p3", "p4"], "customer_id": [1, 1, 2, 3],
                        "timestamp": [t, t + pd.Timedelta(minutes=20), t + pd.Timedelta(minutes=10), t],
                        "model_version": ["1"] * 4, "prediction": [0.1, 0.2, 0.3, 0.4]})
    labels = pd.DataFrame({"customer_id": [1, 2, 3, 3], "label_time": [t + pd.Timedelta(minutes=25), t + pd.Timedelta(minutes=5),
                                                                         t + pd.Timedelta(minutes=1), t + pd.Timedelta(minutes=2)],
                           "y": [1, 0, 1, 0]})
    out = join_labels(log, labels, on=("customer_id", "label_time"), tolerance="30min")
    # customer 1: the label at +25 labels the latest earlier prediction (p2), not p1 as well;
    # customer 2: its label (+5) came before the prediction (+10): nearest would attach it, backward must not;
    # customer 3: two labels after one prediction: the first one counts.
    assert list(out["request_id"]) == ["p4", "p2"] and list(out["y"]) == [1, 1]


def test_an_unserializable_record_is_kept_as_text_and_does_not_block_the_rest(tmp_path: Path) -> None:
    loop: dict[str, object] = {"x": 1.0}
    loop["self"] = loop  # json.dumps raises ValueError on a circular structure
    log = PredictionLogger(tmp_path, "m")
    log.log("odd", "1", loop, 0.5, when=T0)
    log.log("fine", "1", {"x": 2.0}, 0.5, when=T0)
    log.close()
    assert log.healthy
    df = read_log(tmp_path, "m")
    assert list(df["request_id"]) == ["odd", "fine"] and df.loc[0, "unserializable"].startswith("{'x': 1.0")

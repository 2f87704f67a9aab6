"""Append-only prediction log: one JSON line per prediction, one file per model per hour.

Writers buffer records and a background thread flushes them with one ``write()`` on a file
opened with ``O_APPEND``, so the request path never waits on the disk and several server
processes (champion and challenger) can append to the same file without interleaving lines.

What it guarantees (docs/reliability.md has the measured figures):

- Server fields win. ``request_id``, ``timestamp``, ``model``, ``model_version``,
  ``prediction`` and ``client_request_id`` always come from the server; an instance key with
  one of those names is kept as ``client_<name>`` (prefixed again while that name is taken: an
  instance ``"request_id"`` becomes ``client_client_request_id``), so a client
  ``"timestamp": "garbage"`` becomes ``client_timestamp`` and never breaks reading the hour.
- Server request ids. The key of every record is an id the server made
  (:func:`new_request_id`); the id a client sent (its ``x-request-id``) is kept, cut to
  :data:`MAX_CLIENT_REQUEST_ID` characters, as the plain column ``client_request_id`` and is
  never a key, a file name or a pairing id.
- Nothing is lost on a write error. A failed or short write (disk full) puts the unwritten
  records back at the head of the buffer; the flusher retries with backoff, ``healthy`` turns
  False and ``last_error`` says why until a write lands. The buffer is bounded
  (``max_buffer`` records); only beyond that are the oldest dropped, and ``dropped`` counts them.
- Torn lines are recovered. A line cut short (a writer killed mid-write, a short write) is
  skipped and counted in ``read_log(...).attrs["skipped_lines"]``; a record appended after it
  on the same line is still read, and the next write starts on a fresh line.
- ``fsync``: ``"none"`` (the OS decides), ``"interval"`` (the files written are fsynced at most
  every ``fsync_interval`` seconds) or ``"always"`` (every batch is fsynced before the flush
  returns). The default comes from ``DRIFTLOOP_LOG_FSYNC``.
- Retention: with ``retention_days`` (default ``DRIFTLOOP_LOG_RETENTION_DAYS``; 0 keeps
  everything) the flusher removes hourly files older than that, at start and once an hour.
- Half events: the log sink writes each CloudEvent half (request or response) as its own record
  (``log_event``), and :func:`read_log` pairs the halves by id, so sink replicas need not see
  both halves of an exchange.

>>> import tempfile
>>> from datetime import datetime, timezone
>>> d = tempfile.mkdtemp()
>>> log = PredictionLogger(d, "churn")
>>> log.log("r1", "3", {"tenure_months": 4.0, "timestamp": "garbage"}, 0.25, when=datetime(2026, 1, 1, tzinfo=timezone.utc))
>>> log.close()
>>> df = read_log(d, "churn")
>>> df[["request_id", "model_version", "tenure_months", "prediction", "client_timestamp"]].to_dict("records")
[{'request_id': 'r1', 'model_version': '3', 'tenure_months': 4.0, 'prediction': 0.25, 'client_timestamp': 'garbage'}]
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

RESERVED = ("request_id", "timestamp", "model", "model_version", "prediction", "client_request_id")
CLIENT_PREFIX = "client_"  # an instance key that collides with a server field is kept under this prefix
MAX_CLIENT_REQUEST_ID = 128  # characters of a client's x-request-id kept in client_request_id
FSYNC_POLICIES = ("none", "interval", "always")
_MARKER = '{"request_id":'  # every record starts with it (json.dumps keeps key order)
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
_log = logging.getLogger(__name__)
_write = os.write  # one indirection so fault tests can make the disk "full"


def new_request_id() -> str:
    """A fresh server-side request id: 32 hex digits, a millisecond clock then 80 random bits,
    so ids sort by creation time and never repeat in practice.

    >>> a, b = new_request_id(), new_request_id()
    >>> len(a), a != b, all(c in "0123456789abcdef" for c in a)
    (32, True, True)
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def client_request_id(value: Any) -> str | None:
    """The client's request id as logged: a non-empty string cut to
    :data:`MAX_CLIENT_REQUEST_ID` characters with non-printable characters as ``?``; None
    when there is none. It is data, never a key.

    >>> client_request_id("../x"), client_request_id(""), client_request_id(None)
    ('../x', None, None)
    >>> len(client_request_id("a" * 10_000)), client_request_id("ok" + chr(10) + "no")
    (128, 'ok?no')
    """
    if not isinstance(value, str) or not value:
        return None
    return "".join(ch if ch.isprintable() else "?" for ch in value[:MAX_CLIENT_REQUEST_ID])


def check_model_name(model: str, what: str = "model name") -> str:
    """``model`` if it is a safe folder name (letters, digits, ``_.-``, starting with a letter
    or digit), else :class:`DataError`: a name never reaches outside the log folder.

    >>> check_model_name("churn")
    'churn'
    >>> check_model_name("../x")
    Traceback (most recent call last):
    ...
    components.errors.DataError: model name '../x' is not a valid name (fix: use letters, digits, '_', '.', '-', starting with a letter or digit, as an InferenceService name)
    """
    if not isinstance(model, str) or not _MODEL_NAME.fullmatch(model):
        raise DataError(f"{what} {model!r} is not a valid name",
                        fix="use letters, digits, '_', '.', '-', starting with a letter or digit, as an InferenceService name")
    return model


def log_path(log_dir: str | Path, model: str, when: datetime, writer: str = "") -> Path:
    """The hourly file a record written at ``when`` belongs to (``writer`` gives a process
    its own file, e.g. each log-sink replica on a shared volume).

    >>> from datetime import UTC
    >>> log_path("/logs", "churn", datetime(2026, 11, 28, 21, 5, tzinfo=UTC)).as_posix()
    '/logs/churn/2026-11-28/21.jsonl'
    >>> log_path("/logs", "churn", datetime(2026, 11, 28, 21, 5, tzinfo=UTC), writer="sink-0").name
    '21.sink-0.jsonl'
    """
    when = when.astimezone(UTC)
    name = f"{when:%H}.{check_model_name(writer, 'writer name')}.jsonl" if writer else f"{when:%H}.jsonl"
    return Path(log_dir) / check_model_name(model) / when.strftime("%Y-%m-%d") / name


def _hour_of(path: Path) -> datetime | None:
    """The hour an hourly file covers, from ``<day>/<HH>[.<writer>].jsonl``; None if not a log file."""
    try:
        return datetime.strptime(f"{path.parent.name} {path.name.split('.')[0]}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    except ValueError:
        return None


def remove_expired(log_dir: str | Path, model: str, retention_days: float, now: datetime | None = None) -> list[Path]:
    """Delete a model's hourly files that ended more than ``retention_days`` ago (and the day
    folders left empty); returns the files removed. ``retention_days <= 0`` keeps everything.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> for day in ("2026-01-01", "2026-01-09"):
    ...     p = log_path(d, "m", datetime.fromisoformat(f"{day}T05:00+00:00")); p.parent.mkdir(parents=True); _ = p.write_text("")
    >>> [p.parent.name for p in remove_expired(d, "m", 7, now=datetime(2026, 1, 10, tzinfo=UTC))]
    ['2026-01-01']
    """
    if retention_days <= 0:
        return []
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    removed: list[Path] = []
    root = Path(log_dir) / check_model_name(model)
    for path in sorted(root.glob("*/*.jsonl")):
        hour = _hour_of(path)
        if hour is not None and hour + timedelta(hours=1) <= cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    for day in {p.parent for p in removed}:
        if day.exists() and not any(day.iterdir()):
            shutil.rmtree(day, ignore_errors=True)
    return removed


def pair_records(request_id: str, request: dict[str, Any], response: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], float]]:
    """(request id, model version, instance, prediction) for each instance of a v1 or v2 exchange.

    The id is the one the predictor made and returned in the response body (``id``, v1 and
    v2); ``request_id`` (the event's id) only keys a response without one.

    >>> pair_records("e1", {"instances": [{"x": 1.0}, {"x": 2.0}]}, {"predictions": [0.2, 0.9], "model_version": "4", "id": "s9"})
    [('s9-0', '4', {'x': 1.0}, 0.2), ('s9-1', '4', {'x': 2.0}, 0.9)]
    >>> pair_records("e1", {"instances": [{"x": 1.0}]}, {"predictions": [0.2], "model_version": "4"})[0][0]
    'e1'
    """
    server_id = response.get("id")
    request_id = server_id if isinstance(server_id, str) and server_id else request_id
    if "instances" in request:
        instances = list(request["instances"])
    else:  # v2: one named tensor per feature
        columns = {i["name"]: list(i["data"]) for i in request.get("inputs", [])}
        n = len(next(iter(columns.values()), []))
        instances = [{k: v[i] for k, v in columns.items()} for i in range(n)]
    if "predictions" in response:
        predictions = list(response["predictions"])
    else:
        predictions = list(response.get("outputs", [{}])[0].get("data", []))
    version = str(response.get("model_version", ""))
    one = len(instances) == 1
    return [(request_id if one else f"{request_id}-{i}", version, dict(inst), float(p))
            for i, (inst, p) in enumerate(zip(instances, predictions, strict=False))]


def _settings_defaults() -> tuple[str, float]:
    from components.settings import Settings

    s = Settings.from_env()
    return s.log_fsync, float(s.log_retention_days)


class PredictionLogger:
    """Buffered, thread-safe writer of prediction records for one model (one flusher thread).

    ``flush_interval`` bounds how stale the file can be; :meth:`close` flushes the rest.
    ``fsync``/``retention_days`` default to the settings (``DRIFTLOOP_LOG_FSYNC``,
    ``DRIFTLOOP_LOG_RETENTION_DAYS``); ``writer`` gives this process its own hourly files.
    """

    def __init__(
        self,
        log_dir: str | Path,
        model: str,
        flush_interval: float = 0.2,
        *,
        fsync: str | None = None,
        fsync_interval: float = 1.0,
        retention_days: float | None = None,
        max_buffer: int = 200_000,
        writer: str = "",
    ) -> None:
        if fsync is None or retention_days is None:
            default_fsync, default_days = _settings_defaults()
            fsync = default_fsync if fsync is None else fsync
            retention_days = default_days if retention_days is None else retention_days
        if fsync not in FSYNC_POLICIES:
            raise ConfigError(f"fsync policy {fsync!r} is not one of {FSYNC_POLICIES}", fix="set DRIFTLOOP_LOG_FSYNC to none, interval or always")
        self.log_dir = Path(log_dir)
        self.model = check_model_name(model)
        self.writer = check_model_name(writer, "writer name") if writer else ""
        self.flush_interval = flush_interval
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self.retention_days = retention_days
        self.max_buffer = max_buffer
        self.dropped = 0  # records pushed out of a full buffer: the only way a record is lost
        self.written = 0
        self.last_error: str | None = None
        self._pending_bytes = 0
        self._buffer: list[tuple[datetime, dict[str, Any], int]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one flush at a time keeps the file order
        self._dirty: set[Path] = set()
        self._last_fsync = time.monotonic()
        self._next_retention = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"prediction-log-{model}", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        """False while the last write failed (records dropped from a full buffer are counted in
        :attr:`dropped`, which stays visible after the disk recovers)."""
        return self.last_error is None

    @property
    def pending(self) -> int:
        """Records queued and not yet written."""
        return len(self._buffer)

    @property
    def pending_bytes(self) -> int:
        """Body bytes of the queued half events (see :meth:`log_event`)."""
        return self._pending_bytes

    def log(
        self,
        request_id: str,
        model_version: str,
        features: Mapping[str, Any],
        prediction: float,
        when: datetime | None = None,
        client_request_id: str | None = None,
    ) -> None:
        """Queue one record (features may include pass-through keys such as the entity id; do not
        mutate the mapping afterwards: it is serialised later, in the flusher thread).
        ``request_id`` is the server's id; ``client_request_id`` the id the client sent, if any."""
        record = {"request_id": str(request_id), "timestamp": None, "model": self.model, "model_version": str(model_version),
                  "features": features, "prediction": float(prediction)}
        if client_request_id is not None:
            record["client_request_id"] = str(client_request_id)
        self._queue(when or datetime.now(UTC), record, 0)

    def log_event(self, request_id: str, half: str, body: Mapping[str, Any], size: int = 0, when: datetime | None = None,
                  client_request_id: str | None = None) -> None:
        """Queue one half of a request/response exchange (``half`` "request" | "response");
        :func:`read_log` pairs the halves by ``request_id`` (the event id). ``size`` (the body's
        bytes) counts towards :attr:`pending_bytes` until written."""
        if half not in ("request", "response"):
            raise DataError(f"half {half!r} is not 'request' or 'response'", fix="pass the CloudEvent's kind")
        record = {"request_id": str(request_id), "timestamp": None, "model": self.model, "half": half, "body": body}
        if client_request_id is not None:
            record["client_request_id"] = str(client_request_id)
        self._queue(when or datetime.now(UTC), record, size)

    def _queue(self, when: datetime, record: dict[str, Any], size: int) -> None:
        with self._lock:
            self._buffer.append((when, record, size))
            self._pending_bytes += size
            if len(self._buffer) > self.max_buffer:  # bounded memory while the disk is failing
                overflow = len(self._buffer) - self.max_buffer
                self._pending_bytes -= sum(s for _, _, s in self._buffer[:overflow])
                del self._buffer[:overflow]
                self.dropped += overflow

    def flush(self) -> int:
        """Write everything queued so far (one ``write()`` per file); returns the records written.

        On an error (``OSError`` from a full disk, a short write) the unwritten records go back
        to the head of the buffer, ``last_error`` is set and the error is raised; the next flush
        retries them, after a fresh-line guard for any torn line the failure left.
        """
        with self._write_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            by_file: dict[Path, list[tuple[datetime, dict[str, Any], int]]] = defaultdict(list)
            for item in batch:
                by_file[log_path(self.log_dir, self.model, item[0], self.writer)].append(item)
            done = 0
            files = list(by_file.items())
            for n, (path, items) in enumerate(files):
                try:
                    done += self._append(path, items)
                except Exception as exc:  # any failure keeps the unwritten records for the retry
                    unwritten = [it for _, rest in files[n + 1:] for it in rest]
                    self._requeue(items[getattr(exc, "records_written", 0):] + unwritten)
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    raise
            self._fsync_due()
            self.written += done
            self.last_error = None
            return done

    def _append(self, path: Path, items: list[tuple[datetime, dict[str, Any], int]]) -> int:
        lines = []
        for when, record, _ in items:
            record["timestamp"] = when.astimezone(UTC).isoformat()
            try:
                line = json.dumps(record, separators=(",", ":"), default=str)
            except ValueError:  # e.g. a circular structure: keep the record, with its values as text
                key = "body" if "half" in record else "features"
                line = json.dumps({**record, key: {"unserializable": repr(record[key])[:2000]}}, separators=(",", ":"), default=str)
            lines.append((line + "\n").encode())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            # A torn last line (a killed writer, our own short write) must not swallow ours.
            lead = b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
            data = lead + b"".join(lines)
            sent = 0
            try:
                while sent < len(data):
                    wrote = _write(fd, data[sent:])
                    if wrote <= 0:
                        raise OSError(errno.EIO, "write returned 0")
                    sent += wrote
            except OSError as exc:
                whole = _whole_lines(lines, sent - len(lead))
                exc.records_written = whole  # type: ignore[attr-defined]
                with self._lock:
                    self._pending_bytes -= sum(s for _, _, s in items[:whole])
                self.written += whole
                raise
            if self.fsync == "always":
                os.fsync(fd)
            else:
                self._dirty.add(path)
        finally:
            os.close(fd)
        with self._lock:
            self._pending_bytes -= sum(s for _, _, s in items)
        return len(items)

    def _requeue(self, items: list[tuple[datetime, dict[str, Any], int]]) -> None:
        with self._lock:
            self._buffer[:0] = items
            self._pending_bytes -= sum(s for _, _, s in self._buffer[self.max_buffer:])
            self.dropped += max(0, len(self._buffer) - self.max_buffer)
            del self._buffer[self.max_buffer:]

    def _fsync_due(self, force: bool = False) -> None:
        if self.fsync != "interval" or not self._dirty:
            return
        if not force and time.monotonic() - self._last_fsync < self.fsync_interval:
            return
        for path in list(self._dirty):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # removed by retention meanwhile
                self._dirty.discard(path)
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._dirty.discard(path)
        self._last_fsync = time.monotonic()

    def _run(self) -> None:
        delay = self.flush_interval
        while not self._stop.wait(delay):
            try:
                if self.retention_days and time.monotonic() >= self._next_retention:
                    remove_expired(self.log_dir, self.model, self.retention_days)
                    self._next_retention = time.monotonic() + 3600
                self.flush()
                delay = self.flush_interval
            except Exception as exc:  # the flusher must outlive any error: it is retried
                self.last_error = f"{type(exc).__name__}: {exc}"
                _log.warning("prediction log %s: write failed, %d records kept for retry: %s", self.model, self.pending, exc)
                delay = min(max(delay * 2, self.flush_interval), 1.0)  # retrying costs one failed write

    def close(self, timeout: float = 5.0) -> None:
        """Stop the flusher thread and write the remaining records (retrying for up to
        ``timeout`` seconds; what still cannot be written is reported in the log)."""
        self._stop.set()
        self._thread.join()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.flush()
                self._fsync_due(force=True)
                return
            except OSError as exc:
                if time.monotonic() >= deadline:
                    _log.error("prediction log %s: %d records not written at close: %s", self.model, self.pending, exc)
                    return
                time.sleep(min(0.1, self.flush_interval))


def _whole_lines(lines: list[bytes], sent: int) -> int:
    """How many of ``lines`` the first ``sent`` bytes cover completely."""
    n, total = 0, 0
    for line in lines:
        total += len(line)
        if total > sent:
            break
        n += 1
    return n


def _parse_time(value: datetime | str | None) -> pd.Timestamp | None:
    import pandas as pd

    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _records(line: str) -> tuple[list[dict[str, Any]], int]:
    """The records on one line and how many torn pieces were skipped; a torn record followed
    by a whole one on the same line yields the whole one."""
    try:
        rec = json.loads(line)
        return ([rec], 0) if isinstance(rec, dict) else ([], 1)
    except json.JSONDecodeError:
        pass
    starts = [m.start() for m in re.finditer(re.escape(_MARKER), line)]
    found: list[dict[str, Any]] = []
    skipped = 1 if not starts or starts[0] > 0 else 0
    bounds = starts + [len(line)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        try:
            rec = json.loads(line[a:b])
            found.append(rec)
        except json.JSONDecodeError:
            skipped += 1
    return found, skipped


def _row(rec: dict[str, Any], features: Mapping[str, Any]) -> dict[str, Any]:
    """One log row: the server fields of ``rec``, then the instance's keys; a key that is taken
    (a server field, or an earlier renamed key) gets ``client_`` in front until it is free.

    >>> _row({"request_id": "s1", "client_request_id": "c1"}, {"request_id": "evil", "client_request_id": "x"})["client_client_request_id"]
    'evil'
    """
    row = {k: rec.get(k) for k in RESERVED}
    for key, value in features.items():
        name = str(key)
        while name in row:  # server fields win; nothing the client sent is dropped
            name = f"{CLIENT_PREFIX}{name}"
        row[name] = value
    return row


def read_log(
    log_dir: str | Path,
    model: str,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
) -> pd.DataFrame:
    """Read a model's log as one row per prediction: request_id (the server's id), timestamp
    (UTC), model, model_version, prediction, client_request_id (None when the client sent no
    id) and one column per logged feature. ``end`` is exclusive.

    Request and response halves written by the log sink are paired by event id (a half whose
    partner is not there yet is left out and counted in ``attrs["unpaired_halves"]``; an event
    id that carries two different requests or responses cannot be paired safely and is left
    out, counted in ``attrs["conflicting_events"]``). Torn or corrupt
    lines and records without a valid server timestamp are skipped and counted in
    ``attrs["skipped_lines"]``.
    """
    import pandas as pd

    root = Path(log_dir) / check_model_name(model)
    lo, hi = _parse_time(start), _parse_time(end)
    rows: list[dict[str, Any]] = []
    halves: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    conflicts: set[str] = set()
    skipped = 0
    for path in sorted(root.glob("*/*.jsonl")):
        hour = _hour_of(path)
        if hour is None:
            continue
        # Skip whole hourly files outside [start, end) without parsing them; one hour of margin
        # keeps both halves of an exchange that straddles an hour boundary.
        if (hi is not None and hour >= hi + pd.Timedelta(hours=1)) or (lo is not None and hour + pd.Timedelta(hours=2) <= lo):
            continue
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:  # removed by retention while we listed the folder
            continue
        for line in text.splitlines():
            if not line.strip():
                continue
            recs, bad = _records(line)
            skipped += bad
            for rec in recs:
                if "half" in rec:
                    event, half = str(rec.get("request_id")), str(rec["half"])
                    seen = halves[event].setdefault(half, rec)  # a resent half counts once
                    if seen is not rec and seen.get("body") != rec.get("body"):
                        conflicts.add(event)  # two exchanges under one event id: which halves belong together is unknown
                elif isinstance(rec.get("features", {}), dict):
                    rows.append(_row(rec, rec.get("features", {})))
                else:
                    skipped += 1
    unpaired = 0
    for rid, pair in halves.items():
        if rid in conflicts:
            continue
        if len(pair) < 2:
            unpaired += 1
            continue
        req, resp = pair["request"], pair["response"]
        try:
            pairs = pair_records(rid, req["body"], resp["body"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            skipped += 2
            continue
        for request_id, version, instance, prediction in pairs:
            rows.append(_row({"request_id": request_id, "timestamp": req.get("timestamp"), "model": req.get("model"),
                              "model_version": version, "prediction": prediction,
                              "client_request_id": req.get("client_request_id") or resp.get("client_request_id")}, instance))
    columns = list(RESERVED)
    df = pd.DataFrame(rows, columns=columns + sorted({k for r in rows for k in r} - set(columns)))
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601", errors="coerce")
    bad_time = int(df["timestamp"].isna().sum())
    df = df[df["timestamp"].notna()]
    if lo is not None:
        df = df[df["timestamp"] >= lo]
    if hi is not None:
        df = df[df["timestamp"] < hi]
    df = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    df.attrs.update(skipped_lines=skipped + bad_time, unpaired_halves=unpaired, conflicting_events=len(conflicts))
    if skipped + bad_time:
        _log.warning("prediction log %s: skipped %d torn or corrupt records", model, skipped + bad_time)
    return df


def join_labels(
    log_df: pd.DataFrame,
    labels_df: pd.DataFrame,
    on: str | tuple[str, str] = "request_id",
    tolerance: str = "1h",
    timestamp_col: str = "timestamp",
    prediction_col: str = "prediction",
) -> pd.DataFrame:
    """Attach delayed labels to logged predictions: the monitor's current-data frame.

    ``on="request_id"`` joins exactly; a request id logged twice counts once (its first
    prediction) and a relabelled id takes its last label. ``on=(entity, time)`` gives each
    label to the entity's latest prediction made at or before the label's time, at most
    ``tolerance`` earlier (a label never attaches to a later prediction); a prediction followed
    by several labels keeps the first. Predictions without a label are dropped.
    ``timestamp_col``/``prediction_col`` rename the log's columns to the policy's names.

    >>> import pandas as pd
    >>> log = pd.DataFrame({"request_id": ["a", "b", "b"], "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"], utc=True),
    ...                     "model_version": ["1", "1", "1"], "x": [1.0, 2.0, 3.0], "prediction": [0.9, 0.2, 0.3]})
    >>> join_labels(log, pd.DataFrame({"request_id": ["b"], "churned": [0]}))[["request_id", "x", "churned"]].to_dict("records")
    [{'request_id': 'b', 'x': 2.0, 'churned': 0}]
    """
    import pandas as pd

    if isinstance(on, str):
        for name, frame in (("log", log_df), ("labels", labels_df)):
            if on not in frame.columns:
                raise DataError(f"column {on!r} is missing from the {name} frame", fix=f"add {on!r} or join on (entity, time)")
        first = log_df.sort_values("timestamp", kind="stable") if "timestamp" in log_df.columns else log_df
        first = first.drop_duplicates(subset=[on], keep="first")
        labels = labels_df.drop(columns=[c for c in labels_df.columns if c in log_df.columns and c != on]).drop_duplicates(subset=[on], keep="last")
        out = first.merge(labels, on=on, how="inner")
    else:
        entity, time_col = on
        for name, frame, cols in (("log", log_df, (entity, "timestamp")), ("labels", labels_df, (entity, time_col))):
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise DataError(f"columns {missing} are missing from the {name} frame", fix="log the entity id with each request and give label times")
        left = log_df.drop_duplicates(subset=["request_id"], keep="first") if "request_id" in log_df.columns else log_df
        left = left.reset_index(drop=True).assign(_row=lambda f: range(len(f)))
        right = labels_df.rename(columns={time_col: "_label_time"}).copy()
        right["_label_time"] = pd.to_datetime(right["_label_time"], utc=True)
        right = right.drop(columns=[c for c in right.columns if c in left.columns and c != entity]).dropna(subset=["_label_time"])
        label_cols = [c for c in right.columns if c not in (entity, "_label_time")]
        # Each label looks back for the prediction it labels (never forward).
        matched = pd.merge_asof(right.sort_values("_label_time"), left[[entity, "timestamp", "_row"]].sort_values("timestamp"),
                                left_on="_label_time", right_on="timestamp", by=entity, direction="backward",
                                tolerance=pd.Timedelta(tolerance)).dropna(subset=["_row"])
        matched = matched.sort_values("_label_time", kind="stable").drop_duplicates(subset=["_row"], keep="first")
        matched["_row"] = matched["_row"].astype(int)
        out = left.merge(matched[["_row", *label_cols]], on="_row", how="inner").sort_values("timestamp", kind="stable").drop(columns=["_row"])
    return out.rename(columns={"timestamp": timestamp_col, "prediction": prediction_col}).reset_index(drop=True)

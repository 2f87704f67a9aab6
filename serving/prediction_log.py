"""Append-only prediction log: one JSON line per request, one file per model per hour.

Writers buffer records and a background thread flushes them with one ``write()`` on a file
opened with ``O_APPEND``, so the request path never waits on the disk and several server
processes (champion and challenger) can append to the same file without interleaving lines.

>>> import tempfile
>>> from datetime import datetime, timezone
>>> d = tempfile.mkdtemp()
>>> log = PredictionLogger(d, "churn")
>>> log.log("r1", "3", {"tenure_months": 4.0}, 0.25, when=datetime(2026, 1, 1, tzinfo=timezone.utc))
>>> log.close()
>>> df = read_log(d, "churn")
>>> df[["request_id", "model_version", "tenure_months", "prediction"]].to_dict("records")
[{'request_id': 'r1', 'model_version': '3', 'tenure_months': 4.0, 'prediction': 0.25}]
"""

from __future__ import annotations

import json
import os
import threading
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

RESERVED = ("request_id", "timestamp", "model", "model_version", "prediction")


def log_path(log_dir: str | Path, model: str, when: datetime) -> Path:
    """The hourly file a record written at ``when`` belongs to.

    >>> from datetime import UTC
    >>> log_path("/logs", "churn", datetime(2026, 11, 28, 21, 5, tzinfo=UTC)).as_posix()
    '/logs/churn/2026-11-28/21.jsonl'
    """
    when = when.astimezone(UTC)
    return Path(log_dir) / model / when.strftime("%Y-%m-%d") / f"{when:%H}.jsonl"


class PredictionLogger:
    """Buffered, thread-safe writer of prediction records for one model.

    ``flush_interval`` bounds how stale the file can be; :meth:`close` flushes the rest.
    """

    def __init__(self, log_dir: str | Path, model: str, flush_interval: float = 0.2) -> None:
        self.log_dir = Path(log_dir)
        self.model = model
        self.flush_interval = flush_interval
        self._buffer: list[tuple[str, str, Mapping[str, Any], float, datetime]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def log(
        self,
        request_id: str,
        model_version: str,
        features: Mapping[str, Any],
        prediction: float,
        when: datetime | None = None,
    ) -> None:
        """Queue one record (features may include pass-through keys such as the entity id; do not
        mutate the mapping afterwards: it is serialised later, in the flusher thread)."""
        when = when or datetime.now(UTC)
        # Serialising happens in the flusher thread, off the request path.
        with self._lock:
            self._buffer.append((request_id, str(model_version), features, float(prediction), when))

    def flush(self) -> None:
        """Write everything queued so far, one ``write()`` per file."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        by_file: dict[Path, list[str]] = defaultdict(list)
        for request_id, version, features, prediction, when in batch:
            record = {"request_id": request_id, "timestamp": when.isoformat(), "model": self.model,
                      "model_version": version, "features": dict(features), "prediction": prediction}
            by_file[log_path(self.log_dir, self.model, when)].append(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        for path, lines in by_file.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, "".join(lines).encode())
            finally:
                os.close(fd)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def close(self) -> None:
        """Stop the flusher thread and write the remaining records."""
        self._stop.set()
        self._thread.join()
        self.flush()


def _parse_time(value: datetime | str | None) -> pd.Timestamp | None:
    import pandas as pd

    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def read_log(
    log_dir: str | Path,
    model: str,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
) -> pd.DataFrame:
    """Read a model's log as one row per request: request_id, timestamp (UTC), model,
    model_version, prediction and one column per logged feature. ``end`` is exclusive.

    A partially written last line (a writer killed mid-write) is skipped.
    """
    import pandas as pd

    root = Path(log_dir) / model
    lo, hi = _parse_time(start), _parse_time(end)
    rows: list[dict[str, Any]] = []
    for path in sorted(root.glob("*/*.jsonl")):
        # Skip whole hourly files outside [start, end) without parsing them.
        hour = pd.Timestamp(f"{path.parent.name}T{path.stem}:00:00", tz="UTC")
        if (hi is not None and hour >= hi) or (lo is not None and hour + pd.Timedelta(hours=1) <= lo):
            continue
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            row = {k: rec[k] for k in RESERVED}
            row.update(rec.get("features", {}))
            rows.append(row)
    columns = list(RESERVED)
    df = pd.DataFrame(rows, columns=columns + sorted({k for r in rows for k in r} - set(columns)))
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    if lo is not None:
        df = df[df["timestamp"] >= lo]
    if hi is not None:
        df = df[df["timestamp"] < hi]
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)


def join_labels(
    log_df: pd.DataFrame,
    labels_df: pd.DataFrame,
    on: str | tuple[str, str] = "request_id",
    tolerance: str = "1h",
    timestamp_col: str = "timestamp",
    prediction_col: str = "prediction",
) -> pd.DataFrame:
    """Attach delayed labels to logged predictions: the monitor's current-data frame.

    ``on="request_id"`` joins exactly; ``on=(entity, time)`` matches each prediction to the
    label of the same entity whose time is nearest within ``tolerance``. Predictions without
    a label are dropped. ``timestamp_col``/``prediction_col`` rename the log's columns to the
    policy's names.

    >>> import pandas as pd
    >>> log = pd.DataFrame({"request_id": ["a", "b"], "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
    ...                     "model_version": ["1", "1"], "x": [1.0, 2.0], "prediction": [0.9, 0.2]})
    >>> join_labels(log, pd.DataFrame({"request_id": ["b"], "churned": [0]}))[["request_id", "x", "churned"]].to_dict("records")
    [{'request_id': 'b', 'x': 2.0, 'churned': 0}]
    """
    import pandas as pd

    if isinstance(on, str):
        for name, frame in (("log", log_df), ("labels", labels_df)):
            if on not in frame.columns:
                raise DataError(f"column {on!r} is missing from the {name} frame", fix=f"add {on!r} or join on (entity, time)")
        labels = labels_df.drop(columns=[c for c in labels_df.columns if c in log_df.columns and c != on])
        out = log_df.merge(labels, on=on, how="inner")
    else:
        entity, time_col = on
        for name, frame, cols in (("log", log_df, (entity, "timestamp")), ("labels", labels_df, (entity, time_col))):
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise DataError(f"columns {missing} are missing from the {name} frame", fix="log the entity id with each request and give label times")
        left = log_df.sort_values("timestamp")
        right = labels_df.rename(columns={time_col: "_label_time"}).copy()
        right["_label_time"] = pd.to_datetime(right["_label_time"], utc=True)
        right = right.drop(columns=[c for c in right.columns if c in left.columns and c != entity]).sort_values("_label_time")
        out = pd.merge_asof(left, right, left_on="timestamp", right_on="_label_time", by=entity,
                            direction="nearest", tolerance=pd.Timedelta(tolerance))
        label_cols = [c for c in right.columns if c not in (entity, "_label_time")]
        out = out.dropna(subset=label_cols).drop(columns=["_label_time"])
    return out.rename(columns={"timestamp": timestamp_col, "prediction": prediction_col}).reset_index(drop=True)

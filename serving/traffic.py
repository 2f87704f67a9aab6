"""Replay labelled rows through a model endpoint: local traffic for rollouts and benchmarks.

Each row is one v1 request with a unique ``x-request-id``; the row's label is kept by id so
the delayed-label join (:func:`labels`) works exactly as it would with real feedback.

>>> import pandas as pd
>>> r = ReplayTraffic("http://127.0.0.1:1", "churn", pd.DataFrame({"x": [1.0], "y": [1]}), ["x"], label="y")
>>> r.instance(0)
{'x': 1.0}
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class ReplayTraffic:
    """Background threads posting rows round-robin until stopped; records every response."""

    def __init__(self, url: str, model: str, frame: pd.DataFrame, columns: list[str], label: str | None = None,
                 threads: int = 4, rate_per_thread: float | None = None) -> None:
        self.url, self.model, self.columns, self.label = url.rstrip("/"), model, columns, label
        self.rows = frame[columns].to_dict("records")
        self.labels_by_row = frame[label].tolist() if label else None
        self.rate_per_thread = rate_per_thread
        self.results: list[tuple[str, int, str, Any]] = []  # request id, status, served by, label
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def instance(self, i: int) -> dict[str, Any]:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in self.rows[i].items()}

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                with self._lock:
                    i = self._next = (self._next + 1) % len(self.rows)
                rid = uuid.uuid4().hex
                try:
                    r = client.post(f"{self.url}/v1/models/{self.model}:predict", json={"instances": [self.instance(i)]}, headers={"x-request-id": rid})
                    status, served = r.status_code, r.headers.get("x-served-by", "")
                except httpx.HTTPError:
                    status, served = -1, ""
                with self._lock:
                    self.results.append((rid, status, served, self.labels_by_row[i] if self.labels_by_row else None))
                if self.rate_per_thread:
                    time.sleep(1.0 / self.rate_per_thread)

    def start(self) -> ReplayTraffic:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def labels(self) -> pd.DataFrame:
        """``request_id`` and the label of every answered request so far."""
        import pandas as pd

        with self._lock:
            rows = [(rid, y) for rid, status, _, y in self.results if status == 200]
        return pd.DataFrame(rows, columns=["request_id", self.label or "label"])

    def failures(self) -> int:
        with self._lock:
            return sum(1 for r in self.results if r[1] != 200)

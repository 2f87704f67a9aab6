"""Replay labelled rows through a model endpoint: the one traffic replayer.

Each request is a KServe v1 ``predict`` call with its own ``x-request-id`` (the predictor
logs it as ``client_request_id`` only); the labels of the rows it carried are kept by the id
the server returned (the ``x-request-id`` response header, else the body's ``id``), which
keys the prediction log, so the delayed-label join (:meth:`ReplayTraffic.labels`,
:func:`serving.prediction_log.join_labels`) works exactly as it would with real feedback. A
request that got no answer has no label entry. Two ways to drive it:

- in the background (:meth:`~ReplayTraffic.start` / :meth:`~ReplayTraffic.stop`, or
  ``with``): threads post single rows round-robin until stopped (``driftloop rollout
  --replay``, the KFP canary step, the serving tests);
- synchronously (:meth:`~ReplayTraffic.send`): post a frame in requests of ``batch`` rows
  and return the logged request ids (the demo's compressed-time replay).

A batched request's rows are logged as ``<server id>-<i>``, a single row as ``<server id>``
(the predictor's convention), and so are their labels.

>>> import pandas as pd
>>> r = ReplayTraffic("http://127.0.0.1:1", "churn", pd.DataFrame({"x": [1.0, None], "y": [1, 0]}), ["x"], label="y")
>>> r.instance(0), r.instance(1)
({'x': 1.0}, {'x': None})
>>> r.send(r.frame, "a", batch=2)  # nothing listens on port 1: the request fails, nothing is logged
[]
>>> r.sent, r.failed, len(r.labels())
(1, 1, 0)
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pandas as pd


class Reply(NamedTuple):
    """One replayed request: the id the server returned (the id sent when none came back), HTTP
    status (-1: no answer), the arm that served it and its label."""

    request_id: str
    status: int
    served_by: str
    label: Any


class ReplayTraffic:
    """Labelled replay load for a ``/v1/models/<model>:predict`` endpoint.

    ``columns`` are sent as the instance (extra keys such as the entity or segment are
    logged by the predictor, not given to the model); ``label`` and ``label_columns`` (e.g.
    ``label_timestamp``, the entity) are kept per logged request id (the server's) for
    :meth:`labels`.
    """

    def __init__(self, url: str, model: str, frame: pd.DataFrame, columns: list[str], label: str | None = None,
                 threads: int = 4, rate_per_thread: float | None = None, label_columns: list[str] | tuple[str, ...] = ()) -> None:
        self.url, self.model, self.columns, self.label = url.rstrip("/"), model, list(columns), label
        self.frame = frame
        self.label_columns = [c for c in dict.fromkeys([*([label] if label else []), *label_columns]) if c in frame.columns]
        self.rate_per_thread = rate_per_thread
        self.threads = threads
        self.results: list[Reply] = []
        self._labels: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self._threads: list[threading.Thread] = []
        self._client: Any = None

    # -- payloads -----------------------------------------------------------------------
    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """Every row's instance, built on first use (a synchronous replay never needs them all)."""
        return self._records(self.frame)

    @cached_property
    def _row_labels(self) -> list[dict[str, Any]]:
        return [{k: _plain(v) for k, v in row.items()} for row in self.frame[self.label_columns].to_dict("records")]

    def _records(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """The instances of ``frame``: JSON-ready values, missing values as null."""
        part = frame[self.columns].astype(object)
        return [{k: _plain(v) for k, v in row.items()} for row in part.where(part.notna(), None).to_dict("records")]

    def instance(self, i: int) -> dict[str, Any]:
        """The request instance of row ``i`` of the replayed frame."""
        return dict(self.rows[i])

    def _label_values(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """The label columns of each row of ``frame`` (no ids yet: the server gives them)."""
        if not self.label_columns:
            return [{} for _ in range(len(frame))]
        return [{k: _plain(v) for k, v in row.items()} for row in frame[self.label_columns].to_dict("records")]

    # -- sending ------------------------------------------------------------------------
    def _post(self, client: Any, rid: str, instances: list[dict[str, Any]], labels: list[dict[str, Any]]) -> list[str]:
        """Post one request (``rid`` is only the client id we send) and keep its labels under the
        ids the server logged; returns those ids (none when the request failed)."""
        import httpx

        server_id = None
        try:
            r = client.post(f"{self.url}/v1/models/{self.model}:predict", json={"instances": instances}, headers={"x-request-id": rid})
            status, served = r.status_code, r.headers.get("x-served-by", "")
            row_ids = None
            if status == 200:
                body = _json_body(r)
                server_id = r.headers.get("x-request-id") or _body_id(body)
                row_ids = _row_ids(body, len(instances))
        except httpx.HTTPError:  # a refused connection counts as a failed request, the replay goes on
            status, served, row_ids = -1, "", None
        ids = row_ids or (([server_id] if len(instances) == 1 else [f"{server_id}-{i}" for i in range(len(instances))]) if server_id else [])
        label = labels[0].get(self.label) if len(labels) == 1 and self.label else None
        with self._lock:
            self.results.append(Reply(server_id or rid, status, served, label))
            if ids and self.label_columns:
                self._labels.extend({"request_id": i, **row} for i, row in zip(ids, labels, strict=True))
        return ids

    def send(self, rows: pd.DataFrame, prefix: str, batch: int = 1, workers: int | None = None) -> list[str]:
        """Post ``rows`` in requests of ``batch`` instances and wait for every answer.

        Returns the ids the prediction log uses for the rows that were answered, in order: the
        server's id per request, ``-<i>`` per row when a request carries several. ``prefix``
        names the client ids sent (``<prefix>-<n>``), which the log keeps as
        ``client_request_id`` only.
        """
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=(workers or self.threads) * 2))
        jobs = []
        for n, start in enumerate(range(0, len(rows), batch)):
            chunk = rows.iloc[start:start + batch]
            jobs.append((f"{prefix}-{n}", self._records(chunk), self._label_values(chunk)))
        with ThreadPoolExecutor(workers or self.threads) as pool:
            answered = list(pool.map(lambda job: self._post(self._client, *job), jobs))
        return [i for ids in answered for i in ids]

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                with self._lock:
                    i = self._next = (self._next + 1) % len(self.rows)
                rid = uuid.uuid4().hex
                self._post(client, rid, [self.instance(i)], [self._row_labels[i]])
                if self.rate_per_thread:
                    time.sleep(1.0 / self.rate_per_thread)

    def start(self) -> ReplayTraffic:
        """Start the background threads; returns self."""
        self._stop.clear()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop the background threads (after their request in flight) and close the client."""
        self._stop.set()
        for t in self._threads:
            t.join()
        self._threads = []
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> ReplayTraffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what happened ------------------------------------------------------------------
    def labels(self) -> pd.DataFrame:
        """``request_id``, the label and the ``label_columns`` of every answered request so far."""
        import pandas as pd

        with self._lock:
            rows = list(self._labels)
        return pd.DataFrame(rows, columns=["request_id", *self.label_columns])

    @property
    def sent(self) -> int:
        """Requests sent so far."""
        with self._lock:
            return len(self.results)

    @property
    def failed(self) -> int:
        """Requests that did not answer 200."""
        return len(self.failures())

    def failures(self) -> list[Reply]:
        """Every request that did not answer 200."""
        with self._lock:
            return [r for r in self.results if r.status != 200]


def _json_body(response: Any) -> dict[str, Any]:
    """The JSON object of a response body, else an empty dict (one parse per response)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _body_id(body: dict[str, Any]) -> str | None:
    """The ``id`` of a response body (the predictor puts its id there too), else None."""
    found = body.get("id")
    return found if isinstance(found, str) and found else None


def _row_ids(body: dict[str, Any], rows: int) -> list[str] | None:
    """The per-row log ids a cohort router returns when it sent a mixed batch row by row (``ids``), else None.

    >>> body = {"predictions": [0.1, 0.2], "ids": ["a1", "b7"]}
    >>> _row_ids(body, 2), _row_ids(body, 3), _row_ids({"predictions": [0.1]}, 1)
    (['a1', 'b7'], None, None)
    """
    ids = body.get("ids")
    if isinstance(ids, list) and len(ids) == rows and all(isinstance(i, str) and i for i in ids):
        return ids
    return None


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON needs."""
    return value.item() if hasattr(value, "item") else value

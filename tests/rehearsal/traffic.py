"""Users and the business system around an InferenceService during the rehearsal.

While :func:`business_traffic` is entered, users post the frame's rows to the
InferenceService's URL (``status.url``) through the product's replayer
(:func:`serving.canary.rollout.replay_traffic`, a :class:`serving.traffic.ReplayTraffic`), and
the business system learns each answered row's outcome after the label delay and writes it
to the label store: the PostgreSQL offline store's label table that
:func:`components.features.store.read_labels` reads (entity, event time, label,
``label_timestamp``). The event time is when the business saw the prediction answered, so
:func:`components.kfp.canary.store_labels` joins the label to that entity's latest logged
prediction by entity and time, as it would on a cluster.

Only ReplayTraffic's public API is used (constructor, start/stop, labels(), sent, failed).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from tests.rehearsal.cluster import Cluster

# The scenarios' label delays (components/data/spec.py label_delay) scaled down to seconds:
# churn/credit learn the outcome at the end of the month, fraud hours later, recsys minutes later.
SCALED_LABEL_DELAY = {"period_end": 3.0, "hours": 2.0, "minutes": 1.0}
# The log sink records a prediction when the logger's event arrives, a few milliseconds after
# the user got the answer: the business event is stamped this much later so that the label
# never predates the logged prediction it belongs to.
EVENT_MARGIN = pd.Timedelta(milliseconds=500)


@dataclass
class TrafficRun:
    """What happened while the traffic ran."""

    replay: Any  # the ReplayTraffic
    controller: Any
    label_delay: float
    labels_written: int = 0
    _served_at_start: Counter = field(default_factory=Counter)
    _served_at_end: Counter | None = None
    _begin: Any = None  # starts the users and the business system (once)

    def begin(self) -> None:
        """Start the users now (``business_traffic(..., start=False)`` waits for this call); a second call does nothing."""
        if self._begin is not None:
            begin, self._begin = self._begin, None
            begin()

    @property
    def sent(self) -> int:
        return int(self.replay.sent)

    @property
    def failed(self) -> int:
        return int(self.replay.failed)

    @property
    def by_revision(self) -> dict[str, int]:
        """Requests each revision's pods answered (200) during the run."""
        now = self._served_at_end if self._served_at_end is not None else Counter(self.controller.served)
        return {rev: n - self._served_at_start.get(rev, 0) for rev, n in now.items() if n - self._served_at_start.get(rev, 0) > 0}


def write_labels(cluster: Cluster, scenario: str, rows: pd.DataFrame) -> int:
    """Upsert label rows (entity, event time, label, label_timestamp) into the offline store's label table."""
    from components.features import tables
    from components.features.config import offline_store_config, table_name

    config = offline_store_config(cluster.secrets["driftloop-feast"]["offline_url"])
    project = cluster.config_maps["driftloop-settings"].get("DRIFTLOOP_FEAST_PROJECT", "driftloop")
    spec_keys = list(rows.columns[:2])  # entity, event time: the table's key
    tables.write_table(config, table_name(project, scenario, "labels"), rows, spec_keys, append=True)
    return len(rows)


@contextmanager
def business_traffic(cluster: Cluster, policy: str, isvc: str, frame: pd.DataFrame, *, threads: int = 2,
                     rate_per_thread: float | None = 20.0, label_delay: float | None = None, poll_seconds: float = 0.5,
                     start: bool = True) -> Iterator[TrafficRun]:
    """Replay ``frame`` at the InferenceService ``isvc`` and write each answered row's label after the delay.

    ``label_delay`` (seconds) defaults to the scenario's delay scaled down (:data:`SCALED_LABEL_DELAY`).
    ``start=False`` holds the users back until :meth:`TrafficRun.begin` (e.g. when a canary step
    starts), so their load does not slow the steps before it on a small machine.
    """
    from components.data.scenarios import get_spec
    from components.policy import resolve_policy
    from serving.canary.rollout import replay_traffic

    pol = resolve_policy(policy)
    scenario = pol.scenario or pol.model
    spec = get_spec(scenario)
    delay = SCALED_LABEL_DELAY.get(spec.label_delay, 2.0) if label_delay is None else label_delay
    url = cluster.isvc(isvc)["status"]["url"]
    replay = replay_traffic(url, pol, frame, threads=threads, rate_per_thread=rate_per_thread, label_columns=[pol.entity])
    run = TrafficRun(replay, cluster.controller, delay)
    pending: list[pd.DataFrame] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def collect(seen: int) -> int:
        answered = replay.labels()
        new = answered.iloc[seen:]
        if len(new):
            event = pd.Timestamp.now(tz="UTC") + EVENT_MARGIN
            pending.append(pd.DataFrame({spec.entity: new[pol.entity].to_numpy(), spec.timestamp: event,
                                         spec.label: new[pol.label].to_numpy(), "label_timestamp": event + pd.Timedelta(seconds=delay)}))
        return len(answered)

    def flush() -> None:
        now = pd.Timestamp.now(tz="UTC")
        due = [p for p in pending if p["label_timestamp"].iloc[0] <= now]
        if due:
            rows = pd.concat(due, ignore_index=True).drop_duplicates([spec.entity, spec.timestamp], keep="last")
            run.labels_written += write_labels(cluster, scenario, rows)
            for p in due:
                pending.remove(p)

    def business() -> None:
        seen = 0
        try:
            while not stop.is_set():
                seen = collect(seen)
                flush()
                stop.wait(poll_seconds)
            collect(seen)
            while pending:  # the outcomes of the last answered requests become known after the delay too
                time.sleep(min(poll_seconds, delay))
                flush()
        except BaseException as exc:  # noqa: BLE001 - reported by the context manager
            errors.append(exc)

    worker = threading.Thread(target=business, daemon=True, name="business-system")

    def begin() -> None:
        run._served_at_start = Counter(cluster.controller.served)
        replay.start()
        worker.start()

    run._begin = begin
    if start:
        run.begin()
    try:
        yield run
    finally:
        if run._begin is None:  # the users did start
            replay.stop()
            run._served_at_end = Counter(cluster.controller.served)
            stop.set()
            worker.join(timeout=30 + delay)
    if errors:
        raise errors[0]

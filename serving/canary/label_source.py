"""Delayed labels for the canary, read from the label store by polling, and the scaled clock of replays.

Labels reach the controller the way they do in production: each poll reads the label store
(:func:`components.features.store.read_labels`) for the labels *known by now* on the
controller's clock, so a label counts only once its ``label_timestamp`` has passed. They
are matched to the requests by the entity and the event time each request carried.

Replays compress time: :class:`ScaledClock` is the one clock both the controller (step
deadlines) and the label store (``known_by``) read, advanced by the replay itself.

>>> clock = ScaledClock("2025-03-10T00:00:00Z", scale=90)
>>> clock.sleep(20)  # a 20 s controller interval is 30 minutes of scenario time
>>> clock.now().isoformat()
'2025-03-10T00:30:00+00:00'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from components.policy import Policy
    from components.settings import Settings


class ScaledClock:
    """Scenario time that advances ``scale`` seconds per controller second slept (no real waiting).

    ``on_advance(start, end)`` is called for every span slept: the replay sends the traffic
    of that span of scenario time there.
    """

    def __init__(self, start: Any, scale: float = 1.0, on_advance: Callable[[pd.Timestamp, pd.Timestamp], None] | None = None) -> None:
        import pandas as pd

        self._now = pd.Timestamp(start).tz_convert("UTC") if pd.Timestamp(start).tzinfo else pd.Timestamp(start, tz="UTC")
        self.scale, self.on_advance = float(scale), on_advance

    def now(self) -> pd.Timestamp:
        """The current scenario time."""
        return self._now

    def time(self) -> float:
        """The current scenario time in epoch seconds (the controller's ``clock``)."""
        return float(self._now.timestamp())

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds * scale`` of scenario time, replaying that span first (the controller's ``sleep``)."""
        import pandas as pd

        end = self._now + pd.Timedelta(seconds=seconds * self.scale)
        if self.on_advance is not None:
            self.on_advance(self._now, end)
        self._now = end


def store_label_source(policy: Policy, settings: Settings, requests: Callable[[], pd.DataFrame],
                       clock: Callable[[], float], tolerance: str | None = None) -> Callable[[], pd.DataFrame]:
    """A labels callable for the controller: ``request_id`` and the label of every request whose label the store knows by ``clock()``.

    ``requests()`` gives ``request_id``, the policy's entity and event-time columns of the
    requests sent so far (e.g. :meth:`serving.traffic.ReplayTraffic.labels` without its label),
    matched to labels exactly. With ``tolerance`` the requests are prediction-log rows instead
    (``request_id``, the entity, ``timestamp`` = when the prediction was made): each label
    goes to the entity's latest prediction at or before the label's event time, at most
    ``tolerance`` earlier (:func:`serving.prediction_log.join_labels`), as on a cluster where
    the label store knows entities and times, not request ids.

    >>> import tempfile, pandas as pd
    >>> from pathlib import Path
    >>> from components.policy import load_policy
    >>> from components.settings import Settings
    >>> poll = store_label_source(load_policy("fraud"), Settings(workdir=Path(tempfile.mkdtemp())), lambda: pd.DataFrame(), lambda: 0.0)
    >>> poll().columns.tolist()
    ['request_id', 'is_fraud']
    """
    import pandas as pd

    from components.errors import DataError
    from components.features.store import read_labels

    entity, ts, label = policy.entity, policy.timestamp, policy.label
    empty = pd.DataFrame({"request_id": pd.Series(dtype=str), label: pd.Series(dtype=float)})

    def poll() -> pd.DataFrame:
        keys = requests()
        if tolerance is not None:
            return by_time(keys)
        if keys.empty or entity not in keys.columns or ts not in keys.columns:
            return empty
        keys = keys[["request_id", entity, ts]].copy()
        keys[ts] = pd.to_datetime(keys[ts], utc=True)
        known_by = pd.Timestamp(clock(), unit="s", tz="UTC")
        try:
            labels = read_labels(policy.scenario or policy.model, settings, keys[ts].min(), keys[ts].max() + pd.Timedelta(seconds=1), known_by)
        except DataError:
            return empty  # nothing ingested yet
        if labels.empty:
            return empty
        labels = labels[[entity, ts, label]].copy()
        labels[ts] = pd.to_datetime(labels[ts], utc=True)
        joined = keys.merge(labels, on=[entity, ts], how="inner")
        return joined[["request_id", label]].reset_index(drop=True)

    def by_time(log: pd.DataFrame) -> pd.DataFrame:
        from serving.prediction_log import join_labels

        if log.empty or entity not in log.columns or "timestamp" not in log.columns:
            return empty  # no prediction (or none that logged the entity id): "no data", which halts a step
        known_by = pd.Timestamp(clock(), unit="s", tz="UTC")
        try:
            labels = read_labels(policy.scenario or policy.model, settings, pd.to_datetime(log["timestamp"], utc=True).min(),
                                 known_by + pd.Timedelta(seconds=1), known_by)
        except DataError:
            return empty  # nothing labelled yet
        if labels.empty:
            return empty
        joined = join_labels(log, labels[[entity, ts, label]], on=(entity, ts), tolerance=str(tolerance))
        return joined[["request_id", label]].reset_index(drop=True)

    return poll

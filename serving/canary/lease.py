"""One rollout per service: take the lease, keep it fresh, decide how a restarted controller goes on.

:func:`acquire` reads the service's :class:`~serving.canary.state.RolloutRecord` and
writes its own with a compare-and-swap, so of two controllers starting together exactly
one wins. A record that is still active and was written less than ``lease_seconds`` ago
belongs to a live controller: the newcomer is refused with a :class:`RolloutConflict`
naming it. An older active record belongs to a controller that died; the newcomer takes
it over and resumes it (same challenger, written less than ``stale_after`` seconds ago)
or rolls it back (stale, or another challenger).

>>> from serving.canary.state import MemoryState
>>> store, now = MemoryState(), [0.0]
>>> lease, how = acquire(store, "churn", "1", "2", "first", clock=lambda: now[0], lease_seconds=30, stale_after=600)
>>> how
'start'
>>> acquire(store, "churn", "1", "2", "second", clock=lambda: now[0], lease_seconds=30, stale_after=600)
Traceback (most recent call last):
...
serving.canary.state.RolloutConflict: a rollout of churn version 2 (champion 1) is in progress by first: progressing at step 1, 0%, updated 0s ago (fix: wait for it to finish; if that controller died, rerun after its lease expires in 30s)
>>> now[0] = 45.0  # the first controller died: its lease expired, the record is fresh enough to resume
>>> acquire(store, "churn", "1", "2", "second", clock=lambda: now[0], lease_seconds=30, stale_after=600)[1]
'resume'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from components.errors import ConfigError, DataError, ServiceUnavailable
from serving.canary.state import RolloutConflict, RolloutRecord, StateStore

T = TypeVar("T")
Takeover = Literal["start", "resume", "rollback"]


class Lease:
    """The record this controller owns; :meth:`write` stores a change (CAS) and refreshes the lease."""

    def __init__(self, store: StateStore, record: RolloutRecord, token: str, clock: Callable[[], float]) -> None:
        self.store, self.record, self.token, self.clock = store, record, token, clock

    def write(self, **changes: Any) -> RolloutRecord:
        for key, value in changes.items():
            setattr(self.record, key, value)
        self.record.updated_at = self.clock()
        self.token = self.store.write_state(self.record, self.token)
        return self.record


def acquire(store: StateStore, model: str, champion: str, challenger: str, holder: str, *, clock: Callable[[], float],
            lease_seconds: float, stale_after: float) -> tuple[Lease, Takeover]:
    """Take the service's rollout for ``holder``; returns the lease and how to go on."""
    now = clock()
    record, token = store.read_state()
    if record is not None and record.active:
        age = record.age(now)
        if record.holder != holder and age < lease_seconds:
            raise RolloutConflict(
                f"a rollout of {record.model} version {record.challenger} (champion {record.champion}) is in progress by {record.holder}: "
                f"{record.phase} at step {record.step + 1}, {record.percent}%, updated {age:.0f}s ago",
                fix=f"wait for it to finish; if that controller died, rerun after its lease expires in {lease_seconds - age:.0f}s")
        if record.challenger == challenger and record.champion == champion and age < stale_after:
            record.holder = holder
            return Lease(store, record, token, clock), "resume"
        record.holder = holder
        why = "stale" if age >= stale_after else f"it rolled out version {record.challenger}, not {challenger}"
        record.reason = record.reason or f"abandoned rollout taken over after {age:.0f}s ({why})"
        return Lease(store, record, token, clock), "rollback"
    fresh = RolloutRecord(model=model, champion=champion, challenger=challenger, holder=holder, started_at=now)
    lease = Lease(store, fresh, token, clock)
    lease.write()
    return lease, "start"


def retry_until(fn: Callable[[], T], what: str, *, deadline_seconds: float, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep, first_wait: float = 0.5, max_wait: float = 10.0,
                on_retry: Callable[[str], None] | None = None) -> T:
    """Call ``fn`` until it succeeds, backing off (doubling up to ``max_wait``) until ``deadline_seconds`` pass.

    Errors a retry cannot fix (ConfigError, DataError) are raised at once; the last error
    is raised as ServiceUnavailable once the deadline passes.

    >>> calls = []
    >>> def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise ServiceUnavailable("API answered 503")
    ...     return "patched"
    >>> retry_until(flaky, "rollback PATCH", deadline_seconds=60, sleep=lambda s: None), len(calls)
    ('patched', 3)
    """
    deadline, wait = clock() + deadline_seconds, first_wait
    while True:
        try:
            return fn()
        except (ConfigError, DataError, RolloutConflict):
            raise
        except Exception as exc:  # noqa: BLE001 - any transient failure is retried until the deadline
            if clock() + wait > deadline:
                raise ServiceUnavailable(f"{what} failed until the {deadline_seconds:.0f}s deadline: {exc}",
                                         fix="the rollout state is recorded; fix the service and rerun the rollout") from exc
            if on_retry is not None:
                on_retry(f"{what} failed ({exc}); retrying in {wait:.1f}s")
            sleep(wait)
            wait = min(wait * 2, max_wait)

"""The rollout record kept with the service, and the lease that makes one rollout at a time.

Like flagger's Canary status, the record says where a rollout is (phase, step, traffic
share, champion and challenger versions, start and last-analysis times, checks so far),
and the controller writes it *before* every traffic move. The Kubernetes backend keeps it
in the InferenceService annotation :data:`ANNOTATION`, the local backend in a JSON file.
Every write is a compare-and-swap on a token (the resourceVersion, or the file's own
counter), so two controllers can never both believe they drive the service.

>>> r = RolloutRecord(model="churn", champion="1", challenger="2", holder="a", phase="progressing", step=1, percent=50, updated_at=100.0)
>>> RolloutRecord.from_json(r.to_json()) == r
True
>>> r.active, r.age(130.0)
(True, 30.0)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from components.errors import DriftloopError

ANNOTATION = "driftloop.io/rollout"
ACTIVE_PHASES = ("progressing", "promoting", "rolling_back")  # traffic may be away from the champion
PHASES = (*ACTIVE_PHASES, "promoted", "rolled_back")


class RolloutConflict(DriftloopError):
    """Another controller holds the service's rollout, or changed the record under us."""


@dataclass
class RolloutRecord:
    """Where one rollout of ``challenger`` against ``champion`` stands."""

    model: str
    champion: str
    challenger: str
    holder: str
    phase: str = "progressing"
    step: int = 0
    percent: int = 0
    started_at: float = 0.0
    updated_at: float = 0.0
    last_analysed_at: float | None = None
    failed_checks: int = 0
    reason: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Traffic may be away from the champion, or the registry not yet moved."""
        return self.phase in ACTIVE_PHASES

    def age(self, now: float) -> float:
        """Seconds since the record was last written."""
        return now - self.updated_at

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> RolloutRecord:
        """Parse a stored record; unknown keys (a newer controller's) are ignored."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class StateStore(Protocol):
    """Where a backend keeps the record: read returns (record or None, token); write is CAS on the token."""

    def read_state(self) -> tuple[RolloutRecord | None, str]: ...

    def write_state(self, record: RolloutRecord, token: str) -> str: ...


class MemoryState:
    """A record in memory (backends that keep none, and tests).

    >>> m = MemoryState()
    >>> token = m.write_state(RolloutRecord("churn", "1", "2", "me"), m.read_state()[1])
    >>> m.write_state(RolloutRecord("churn", "1", "2", "other"), "0")
    Traceback (most recent call last):
    ...
    serving.canary.state.RolloutConflict: the rollout record changed since it was read (token 0, now 1) (fix: another controller is driving this service; wait for it or let its lease expire)
    """

    def __init__(self) -> None:
        self.record: RolloutRecord | None = None
        self.version = 0

    def read_state(self) -> tuple[RolloutRecord | None, str]:
        return (RolloutRecord.from_json(self.record.to_json()) if self.record else None), str(self.version)

    def write_state(self, record: RolloutRecord, token: str) -> str:
        if token != str(self.version):
            raise conflict(token, str(self.version))
        self.record = RolloutRecord.from_json(record.to_json())
        self.version += 1
        return str(self.version)


class FileState:
    """A record in a JSON file, CAS on a counter inside it under an exclusive file lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> tuple[RolloutRecord | None, str]:
        if not self.path.exists():
            return None, "0"
        data = json.loads(self.path.read_text())
        record = data.get("record")
        return (RolloutRecord.from_json(json.dumps(record)) if record else None), str(data.get("version", 0))

    def read_state(self) -> tuple[RolloutRecord | None, str]:
        with self._locked():
            return self._load()

    def write_state(self, record: RolloutRecord, token: str) -> str:
        with self._locked():
            _, current = self._load()
            if token != current:
                raise conflict(token, current)
            version = str(int(current) + 1)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as f:  # write, fsync, rename: a crash leaves the old record or the new one
                f.write(json.dumps({"version": int(version), "record": json.loads(record.to_json())}))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            return version


def conflict(token: str, current: str) -> RolloutConflict:
    return RolloutConflict(f"the rollout record changed since it was read (token {token}, now {current})",
                           fix="another controller is driving this service; wait for it or let its lease expire")


def state_store(backend: object) -> StateStore:
    """The backend itself when it keeps a record (``read_state``/``write_state``), else one in memory."""
    if callable(getattr(backend, "read_state", None)) and callable(getattr(backend, "write_state", None)):
        return backend  # type: ignore[return-value]
    return MemoryState()

"""The rehearsal's summary: one row per case (name, passed, seconds, detail) and per task run (pipeline, task, seconds, exit code).

``make rehearse`` writes it to ``.driftloop/rehearsal/summary.json``::

    {"cases": [{"name", "passed", "seconds", "detail"}], "tasks": [{"pipeline", "task", "seconds", "exit_code"}]}

>>> s = Summary(["quiet-window"])
>>> with s.case("quiet-window") as case:
...     case.detail = "action none"
>>> s.to_dict()["cases"][0]["passed"], s.to_dict()["cases"][0]["detail"]
(True, 'action none')
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CASES = ("quiet-window", "promote", "rollback", "rerun-once", "failed-train-retries", "alerts-fire", "webhook", "overlay-overrides", "fraud-emergency")
SUMMARY_PATH = Path(__file__).resolve().parents[2] / ".driftloop" / "rehearsal" / "summary.json"


@dataclass
class Case:
    """One rehearsal case's outcome; ``detail`` says what was shown (or the failure's first line)."""

    name: str
    passed: bool = False
    seconds: float = 0.0
    detail: str = "not run"


class Summary:
    """Cases in the issue's order and every task row of every run, written as JSON."""

    def __init__(self, names: Sequence[str] = CASES, path: str | Path | None = None) -> None:
        self.cases = {name: Case(name) for name in names}
        self.tasks: list[dict[str, Any]] = []
        self.path = Path(path) if path else None  # written after every case, so a run cut short still leaves its summary

    @contextmanager
    def case(self, name: str) -> Iterator[Case]:
        """Time a case; it passes when the block finishes, else its detail is the error's first line (re-raised)."""
        case = self.cases.setdefault(name, Case(name))
        case.detail, started = "", time.monotonic()
        try:
            yield case
        except BaseException as exc:
            case.passed = False
            case.detail = (f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")[:400]
            raise
        else:
            case.passed = True
        finally:
            case.seconds = round(time.monotonic() - started, 2)
            if self.path is not None:
                self.write(self.path)

    def add_tasks(self, rows: Sequence[dict[str, Any]]) -> None:
        """Task rows of a run (``TaskRecord.row()``)."""
        self.tasks.extend(rows)

    def to_dict(self) -> dict[str, Any]:
        """The summary.json shape."""
        return {"cases": [vars(c) for c in self.cases.values()], "tasks": list(self.tasks)}

    def write(self, path: str | Path = SUMMARY_PATH) -> Path:
        """Write the summary (parents created); return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

"""The monitors' result types: :class:`TestResult` per test, :class:`MonitorReport` per run.

Every test and detector returns a ``TestResult``; a monitoring run's report holds them as
``TestResult.to_dict()`` rows in one JSON document (every monitor, whether it fired, a
one-line summary with figures, and the decision) that the decision, the HTML report and
the KFP UI are rendered from. The report round-trips through JSON unchanged.

>>> r = TestResult(test="ks", statistic=0.31, p_value=1e-6, threshold=0.01, drift=True, feature="monthly_charges")
>>> r.to_dict()["feature"], r.to_dict()["drift"]
('monthly_charges', True)
>>> report = MonitorReport(model="churn", model_version="3",
...     window={"start": "2025-07-01T00:00:00", "end": "2025-07-31T00:00:00", "rows": 10},
...     monitors=[{"name": "acc", "type": "performance", "fired": False, "results": [], "summary": "ok"}],
...     decision={"action": "none", "strategy": None, "reasons": []}, created_at="2026-11-28T20:00:00+00:00")
>>> MonitorReport.from_json(report.to_json()) == report
True
>>> report.fired_monitors()
[]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from components.errors import DataError
from components.jsonsafe import json_safe

REPORT_VERSION = 1


@dataclass(frozen=True)
class TestResult:
    """One statistical test or metric check.

    ``threshold`` is what ``statistic`` (or ``p_value`` when the test has one) is compared
    with; ``drift`` is the verdict. ``detected_at`` is the 0-based row in the time-ordered
    current data where an online or sequential test fired (``None`` if it did not).
    ``status`` is ``"ok"`` or ``"insufficient_data"`` (then ``drift`` is False).
    """

    __test__ = False  # not a pytest test class

    test: str
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drift: bool
    feature: str | None = None
    metric: str | None = None
    segment: str | None = None
    detected_at: int | None = None
    status: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN and inf become ``None``).

        Estimates (``test == "cbpe"``) also carry their band and the realised value at the
        top level (``lower``, ``upper``, ``realised``), where a reader compares them.
        """
        out = {k: json_safe(v) for k, v in asdict(self).items()}
        if self.test == "cbpe":
            out.update({k: json_safe(self.details.get(k)) for k in ("lower", "upper", "realised")})
        return out


@dataclass
class MonitorReport:
    """What one monitoring run found and decided.

    ``window`` is the current data's ``{"start", "end", "rows", ...}``; ``monitors`` is a list
    of ``{"name", "type", "fired", "results", "summary", ...}``; ``decision`` is
    :meth:`components.decision.Decision.to_dict`. ``warnings`` collects problems that did not
    stop the run (a label column not yet available, a webhook that was down).
    """

    model: str
    model_version: str | None
    window: dict[str, Any]
    monitors: list[dict[str, Any]]
    decision: dict[str, Any]
    created_at: str
    reference_window: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    version: int = REPORT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN and inf become ``None``)."""
        return json_safe(asdict(self))

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> MonitorReport:
        """Read a report written by :meth:`to_json`; a malformed document raises ``DataError``."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"monitor report is not valid JSON: {exc}", fix="pass a report.json written by 'driftloop monitor'") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MonitorReport:
        """Build a report from its dict form, naming any missing key."""
        missing = [k for k in ("model", "window", "monitors", "decision", "created_at") if k not in raw]
        if missing:
            raise DataError(f"monitor report lacks keys {missing}", fix="pass a report.json written by 'driftloop monitor'")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known} | {"model_version": raw.get("model_version")})

    def monitor(self, name: str) -> dict[str, Any]:
        """The monitor entry called ``name``."""
        for m in self.monitors:
            if m["name"] == name:
                return m
        raise KeyError(name)

    def fired_monitors(self) -> list[str]:
        """Names of the monitors that fired, in policy order."""
        return [m["name"] for m in self.monitors if m.get("fired")]

"""The one result type every test and detector returns, and that the report is built from.

>>> r = TestResult(test="ks", statistic=0.31, p_value=1e-6, threshold=0.01, drift=True, feature="monthly_charges")
>>> r.to_dict()["feature"], r.to_dict()["drift"]
('monthly_charges', True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from components.jsonsafe import json_safe


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
        """A JSON-safe dict (NaN and inf become ``None``)."""
        return {k: json_safe(v) for k, v in asdict(self).items()}

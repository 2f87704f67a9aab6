"""What the demo reads back from its pipeline runs: the monitor report, the gate's reasons, per-period figures.

>>> metrics, drift, monitors = period_figures({"monitors": [{"name": "acc", "type": "performance", "fired": True,
...     "results": [{"metric": "accuracy", "statistic": 0.8, "threshold": 0.85, "drift": True}]}]})
>>> metrics[0]["value"], monitors[0]["fired"], drift
(0.8, True, [])
"""

from __future__ import annotations

import json
from typing import Any

from components.errors import DriftloopError


def read_report(run: Any) -> dict[str, Any]:
    """The monitor report (JSON) of a local monitor run."""
    for path in run.artifacts("report"):
        try:
            return dict(json.loads(path.read_text()))
        except (ValueError, OSError):
            continue
    raise DriftloopError(f"the monitor run under {run.run_dir} wrote no report", fix="read the task logs above")


def gate_reasons(run: Any) -> list[str]:
    """The champion-vs-challenger gate's reasons from a train run's ``verdict`` artifact."""
    for path in run.artifacts("verdict"):
        try:
            return [str(r) for r in json.loads(path.read_text()).get("reasons", [])]
        except (ValueError, OSError, AttributeError):
            continue
    return []


def period_figures(report: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Performance metrics, per-feature drift and monitor one-liners from a monitor report."""
    metrics, drift, monitors = [], [], []
    for m in report.get("monitors", []):
        fired = sorted({str(r["segment"]) for r in m.get("results", []) if r.get("drift") and r.get("segment") not in (None, "")})
        monitors.append({"name": m.get("name"), "type": m.get("type"), "fired": bool(m.get("fired")), "fired_segments": fired,
                         "summary": m.get("summary", "")})
        for r in m.get("results", []):
            if m.get("type") == "performance" and r.get("metric"):
                metrics.append({"monitor": m["name"], "metric": r["metric"], "segment": r.get("segment"), "value": r.get("statistic"),
                                "threshold": r.get("threshold"), "fired": bool(r.get("drift")), "status": r.get("status")})
            elif m.get("type") == "feature_drift" and r.get("feature") and r.get("segment") in (None, "") and r.get("test") != "psi":
                drift.append({"feature": r["feature"], "statistic": r.get("statistic"), "p_value": r.get("p_value"), "drift": bool(r.get("drift"))})
    return metrics, drift, monitors

"""One runner per monitor type: the monitor types are the keys of :data:`RUNNERS`.

A runner takes the :class:`~components.monitor.context.MonitorContext` and one policy
monitor and returns ``{"fired", "results", "summary", ...}`` (plus plot data: distributions,
slices, traces). The policy validates a monitor's ``type`` against :data:`MONITOR_TYPES`
and the engine dispatches through :data:`RUNNERS`, so a type is declared here once.

>>> MONITOR_TYPES
('feature_drift', 'prediction_drift', 'label_drift', 'performance', 'estimated_performance', 'concept_drift', 'sequential')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from components.monitor.context import MonitorContext
from components.monitor.runners import (
    concept_drift,
    estimated_performance,
    feature_drift,
    label_drift,
    performance,
    prediction_drift,
    sequential,
)

Runner = Callable[[MonitorContext, Any], dict[str, Any]]

RUNNERS: dict[str, Runner] = {
    "feature_drift": feature_drift.run,
    "prediction_drift": prediction_drift.run,
    "label_drift": label_drift.run,
    "performance": performance.run,
    "estimated_performance": estimated_performance.run,
    "concept_drift": concept_drift.run,
    "sequential": sequential.run,
}
MONITOR_TYPES = tuple(RUNNERS)

__all__ = ["MONITOR_TYPES", "RUNNERS", "Runner"]

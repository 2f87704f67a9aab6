"""Compatibility name for :class:`~components.monitor.results.MonitorReport` (moved to ``results``).

Still imported by ``components/kfp/monitoring.py`` and ``tests/components/kfp/test_component_steps.py``;
delete this module once they import ``components.monitor.results``.
"""

from components.monitor.results import REPORT_VERSION, MonitorReport

__all__ = ["REPORT_VERSION", "MonitorReport"]

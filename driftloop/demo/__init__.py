"""The whole loop on one machine: data -> features -> champion -> serve -> replay -> monitor -> retrain -> canary.

- :mod:`driftloop.demo.plan`: how each scenario is replayed (:func:`plan_for`, :class:`DemoPlan`);
- :mod:`driftloop.demo.loop`: the run itself (:class:`Demo`);
- :mod:`driftloop.demo.reports`: what it reads back from the pipeline runs;
- :mod:`driftloop.demo.console`: :func:`run_demo` (progress on screen, logs in files,
  ``summary.json`` and the dashboard).
"""

from driftloop.demo.console import captured_output, run_demo
from driftloop.demo.loop import Demo
from driftloop.demo.plan import DemoPlan, plan_for

__all__ = ["Demo", "DemoPlan", "captured_output", "plan_for", "run_demo"]

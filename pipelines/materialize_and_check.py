"""The materialize-and-check pipeline: check a feature view's new batch where the data lands, then load it.

One step (``components.kfp.feature_checks.check_and_materialize``): per-feature drift and
data quality against the view's reference (``feature_repo/feature_checks.yaml``), one
upstream event naming every model that reads a drifted feature, and materialization into
the online store unless a quality check failed and the view's ``on_fail`` is ``block``.
The pipeline returns ``"passed"``, ``"warned"`` (failed, materialized anyway) or ``"blocked"``.

>>> p = build("local")
>>> p.name
'driftloop-materialize-and-check'
>>> sorted(p.component_spec.inputs)
['checks', 'end', 'pushgateway', 'start', 'view', 'workdir']
"""

# No "from __future__ import annotations": KFP reads the pipeline signature's real types.
from typing import Any

from kfp import dsl

from components.kfp.feature_checks import check_and_materialize
from pipelines.platform import server_step, time_dependent


def build(target: str = "cluster") -> Any:
    """The materialize-and-check pipeline for ``target`` ("cluster" or "local")."""

    @dsl.pipeline(name="driftloop-materialize-and-check",
                  description="Check a feature view's batch against its reference; materialize it unless a quality check blocks it.")
    def materialize_and_check_pipeline(view: str, start: str, end: str, checks: str = "", pushgateway: str = "", workdir: str = "") -> str:
        # reads the offline store and writes the online store: never served from cache
        step = server_step(time_dependent(check_and_materialize(view=view, start=start, end=end, checks=checks, pushgateway=pushgateway, workdir=workdir)),
                           target, feast=True)
        step.set_display_name("check and materialize")
        return step.outputs["verdict"]

    return materialize_and_check_pipeline

"""KFP step for feature views: check a materialized window and load it into the online store unless blocked.

One library call (:func:`components.features.materialize_check.materialize_and_check`),
the same as ``driftloop features check``. No ``from __future__ import annotations`` here:
KFP reads the real annotation objects.

>>> sorted(check_and_materialize.component_spec.outputs)
['blocked', 'metrics', 'models', 'passed', 'report', 'verdict']
"""

from typing import NamedTuple

from kfp.dsl import Artifact, Metrics, Output

from components.kfp import IMAGE, component

__all__ = ["IMAGE", "check_and_materialize"]


@component
def check_and_materialize(view: str, start: str, end: str, checks: str, pushgateway: str, workdir: str,
                          report: Output[Artifact], metrics: Output[Metrics]) -> NamedTuple(  # type: ignore[valid-type]
        "FeatureCheck", [("verdict", str), ("passed", bool), ("blocked", bool), ("models", str)]):
    """Check ``view``'s rows in ``[start, end)``, tell the models that read a drifted feature, materialize unless blocked."""
    from collections import namedtuple

    from components.features.materialize_check import materialize_and_check
    from components.kfp import runtime

    settings = runtime.settings_for(workdir)
    rep = materialize_and_check(view, start, end, settings, checks or None)
    runtime.write_text(report.path, rep.to_json())
    metrics.log_metric("rows", rep.rows)
    metrics.log_metric("drifted_features", len(rep.drifted_features))
    metrics.log_metric("failed_quality_checks", len(rep.failed_quality))
    metrics.log_metric("blocked", int(rep.blocked))
    gateway = pushgateway or settings.pushgateway_url  # the settings ConfigMap's DRIFTLOOP_PUSHGATEWAY_URL on a cluster
    if gateway:
        from components.features.view_metrics import push_view_metrics

        push_view_metrics(rep, gateway)
    return namedtuple("FeatureCheck", ["verdict", "passed", "blocked", "models"])(rep.verdict, rep.passed, rep.blocked, ",".join(rep.models))

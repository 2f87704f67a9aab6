"""Prometheus metrics of a feature-view check, beside the model monitors' metrics.

:func:`export_view_metrics` sets gauges on a ``CollectorRegistry`` (one per run, so a
pushed group holds exactly one batch's values); :func:`push_view_metrics` pushes that
registry to a Pushgateway under job ``driftloop_feature_views`` and the view as grouping key.

Metrics (labels): ``driftloop_feature_view_check_passed{view}`` (1/0),
``driftloop_feature_view_blocked{view}`` (1 when the batch was kept out of the online store),
``driftloop_feature_view_rows{view}``, ``driftloop_feature_view_staleness_hours{view}``,
``driftloop_feature_view_drifted_features{view}``,
``driftloop_feature_view_drift_p_value{view,feature,test}``,
``driftloop_feature_view_quality_value{view,feature,check}`` and
``driftloop_feature_view_quality_passed{view,feature,check}`` (feature ``""`` for batch-wide checks),
``driftloop_feature_view_affected_models{view}``.

>>> from prometheus_client import CollectorRegistry
>>> from components.features.views_monitor import QualityResult, ViewReport
>>> report = ViewReport("churn_features", {"start": "a", "end": "b"}, 150, [],
...     [QualityResult("null_share", "total_charges", 1.0, "<= 0.05", False)], "block", models=["churn"], blocked=True)
>>> registry = export_view_metrics(report, CollectorRegistry())
>>> registry.get_sample_value("driftloop_feature_view_blocked", {"view": "churn_features"})
1.0
>>> registry.get_sample_value("driftloop_feature_view_quality_value", {"view": "churn_features", "feature": "total_charges", "check": "null_share"})
1.0
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Gauge

from components.features.views_monitor import ViewReport

JOB = "driftloop_feature_views"
# Every metric export_view_metrics sets (alert rules and dashboards are tested against it).
EXPORTED = ("driftloop_feature_view_check_passed", "driftloop_feature_view_blocked", "driftloop_feature_view_rows",
            "driftloop_feature_view_drifted_features", "driftloop_feature_view_affected_models", "driftloop_feature_view_staleness_hours",
            "driftloop_feature_view_drift_p_value", "driftloop_feature_view_quality_value", "driftloop_feature_view_quality_passed")


def export_view_metrics(report: ViewReport, registry: CollectorRegistry) -> CollectorRegistry:
    """Set the gauges of one checked batch on ``registry`` and return it."""
    view = {"view": report.view}

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ("view",)) -> Gauge:
        return Gauge(name, doc, labels, registry=registry)

    gauge("driftloop_feature_view_check_passed", "1 if every quality check of the last batch passed").labels(**view).set(float(report.passed))
    gauge("driftloop_feature_view_blocked", "1 if the last batch was kept out of the online store").labels(**view).set(float(report.blocked))
    gauge("driftloop_feature_view_rows", "rows in the last checked batch").labels(**view).set(report.rows)
    gauge("driftloop_feature_view_drifted_features", "features of the last batch that drifted").labels(**view).set(len(report.drifted_features))
    gauge("driftloop_feature_view_affected_models", "models told about the last batch's drift").labels(**view).set(len(report.models))
    fresh = next((q.value for q in report.quality if q.check == "freshness"), math.nan)
    gauge("driftloop_feature_view_staleness_hours", "hours between the batch end and its newest event").labels(**view).set(fresh)
    p = gauge("driftloop_feature_view_drift_p_value", "drift test p-value per feature", ("view", "feature", "test"))
    for r in report.drift:
        p.labels(view=report.view, feature=r.feature or "", test=r.test).set(math.nan if r.p_value is None else r.p_value)
    value = gauge("driftloop_feature_view_quality_value", "value of each quality check", ("view", "feature", "check"))
    ok = gauge("driftloop_feature_view_quality_passed", "1 if the quality check passed", ("view", "feature", "check"))
    for q in report.quality:
        labels = {"view": report.view, "feature": q.feature or "", "check": q.check}
        value.labels(**labels).set(q.value)
        ok.labels(**labels).set(float(q.passed))
    return registry


def push_view_metrics(report: ViewReport, gateway: str) -> None:
    """Push one batch's metrics to the Pushgateway at ``gateway`` (``host:port`` or URL), grouped by view."""
    from prometheus_client import push_to_gateway

    push_to_gateway(gateway, job=JOB, registry=export_view_metrics(report, CollectorRegistry()), grouping_key={"view": report.view})


__all__ = ["JOB", "export_view_metrics", "push_view_metrics"]

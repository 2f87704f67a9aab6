"""Push the pipeline steps' metrics to a Prometheus Pushgateway (``DRIFTLOOP_PUSHGATEWAY_URL``).

Pipeline steps are short-lived pods that Prometheus cannot scrape, so the monitor, decide
and rollout steps push what the alert rules (``manifests/base/prometheusrule.yaml``) and
the Grafana dashboard read. Each step replaces its own group (job + model) on the
gateway; counters continue from the value the gateway holds, so ``increase()`` sees
every rollback. With no URL set nothing is pushed; an unreachable gateway prints one
warning and never fails the step (monitoring must not stop a retrain).

>>> sorted(EXPORTED)[:3]
['driftloop_canary_promotions_total', 'driftloop_canary_rollbacks_total', 'driftloop_canary_traffic_percent']
>>> push_monitor(_settings(""), "churn", [])
False
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

# Every metric this module pushes, with its help text (tests check alerts and dashboards against it).
EXPORTED = {
    "driftloop_monitor_fired": "1 when the latest run of the monitor fired, else 0",
    "driftloop_monitor_statistic": "the latest statistic of each monitor test (drift score, metric value) per feature, metric and segment",
    "driftloop_monitor_threshold": "the threshold the statistic is compared with",
    "driftloop_decision": "1 for the action the latest decision chose, 0 for the others",
    "driftloop_decisions_total": "decisions taken, by action",
    "driftloop_canary_traffic_percent": "the challenger's share of traffic: each canary step while the rollout runs, 0 after a rollback, 100 after a promotion",
    "driftloop_canary_rollbacks_total": "canary rollouts rolled back automatically",
    "driftloop_canary_promotions_total": "canary rollouts promoted",
}
ACTIONS = ("none", "retrain", "alert")
_TEST_LABELS = ("model", "monitor", "type", "test", "feature", "metric", "segment")


def _settings(url: str) -> Any:
    from components.settings import Settings

    return Settings.from_env({"DRIFTLOOP_PUSHGATEWAY_URL": url} if url else {})


def push_monitor(settings: Any, model: str, monitors: Sequence[dict[str, Any]]) -> bool:
    """Push each monitor's verdict (``driftloop_monitor_fired``) and its tests' statistics; ``True`` if pushed."""
    if not settings.pushgateway_url:
        return False
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    fired = Gauge("driftloop_monitor_fired", EXPORTED["driftloop_monitor_fired"], ["model", "monitor", "type"], registry=registry)
    statistic = Gauge("driftloop_monitor_statistic", EXPORTED["driftloop_monitor_statistic"], _TEST_LABELS, registry=registry)
    threshold = Gauge("driftloop_monitor_threshold", EXPORTED["driftloop_monitor_threshold"], _TEST_LABELS, registry=registry)
    for m in monitors:
        fired.labels(model, m["name"], m.get("type") or "").set(1.0 if m.get("fired") else 0.0)
        for r in m.get("results") or []:
            labels = (model, m["name"], m.get("type") or "", r.get("test") or "", r.get("feature") or "", r.get("metric") or "", r.get("segment") or "")
            for gauge, value in ((statistic, _number(r.get("statistic"))), (threshold, _number(r.get("threshold")))):
                if value is not None:  # a test without a figure (no data) has no sample
                    gauge.labels(*labels).set(value)
    return _push(settings.pushgateway_url, "driftloop-monitor", model, registry)


def push_decision(settings: Any, model: str, action: str) -> bool:
    """Push the decision's action (``driftloop_decision``) and count it (``driftloop_decisions_total``)."""
    if not settings.pushgateway_url:
        return False
    from prometheus_client import CollectorRegistry, Counter, Gauge

    registry = CollectorRegistry()
    chosen = Gauge("driftloop_decision", EXPORTED["driftloop_decision"], ["model", "action"], registry=registry)
    total = Counter("driftloop_decisions", EXPORTED["driftloop_decisions_total"], ["model", "action"], registry=registry)
    job = "driftloop-decision"
    for a in ACTIONS:
        chosen.labels(model, a).set(1.0 if a == action else 0.0)
        total.labels(model, a).inc(_pushed(settings.pushgateway_url, "driftloop_decisions_total", job, model, action=a) + (a == action))
    return _push(settings.pushgateway_url, job, model, registry)


def push_rollout(settings: Any, model: str, result: Any) -> bool:
    """Push a finished rollout: traffic left on the challenger, and one more rollback or promotion."""
    if not settings.pushgateway_url:
        return False
    from prometheus_client import CollectorRegistry, Counter, Gauge

    registry = CollectorRegistry()
    job, url, promoted = "driftloop-canary", settings.pushgateway_url, result.outcome == "promoted"
    Gauge("driftloop_canary_traffic_percent", EXPORTED["driftloop_canary_traffic_percent"], ["model"], registry=registry).labels(model).set(100.0 if promoted else 0.0)
    for name, happened in (("driftloop_canary_rollbacks", not promoted), ("driftloop_canary_promotions", promoted)):
        counter = Counter(name, EXPORTED[f"{name}_total"], ["model"], registry=registry)
        counter.labels(model).inc(_pushed(url, f"{name}_total", job, model) + happened)
    return _push(url, job, model, registry)


def push_rollout_start(settings: Any, model: str) -> bool:
    """Push the rollout counters at their current values (0 the first time) before any traffic moves.

    Prometheus's ``increase()`` needs a sample before the change: a counter series that first
    appears at 1 shows no increase, so without this the first rollback of a model would never
    fire ``DriftloopCanaryRolledBack``.
    """
    if not settings.pushgateway_url:
        return False
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    job, url = "driftloop-canary", settings.pushgateway_url
    for name in ("driftloop_canary_rollbacks", "driftloop_canary_promotions"):
        Counter(name, EXPORTED[f"{name}_total"], ["model"], registry=registry).labels(model).inc(_pushed(url, f"{name}_total", job, model))
    return _push(url, job, model, registry, replace=False)


def push_traffic(settings: Any, model: str, percent: float) -> bool:
    """Push the challenger's traffic share while a rollout runs (only that gauge: the group's counters stay)."""
    if not settings.pushgateway_url:
        return False
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    Gauge("driftloop_canary_traffic_percent", EXPORTED["driftloop_canary_traffic_percent"], ["model"], registry=registry).labels(model).set(float(percent))
    return _push(settings.pushgateway_url, "driftloop-canary", model, registry, replace=False)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value else None


def _pushed(url: str, sample: str, job: str, model: str, **labels: str) -> float:
    """The value of ``sample`` in this job/model group on the gateway (0 when absent or unreachable)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    want = {"job": job, "model": model, **labels}
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=10) as resp:  # noqa: S310 (the configured gateway)
            text = resp.read().decode()
    except OSError:
        return 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in want.items()):
                return float(s.value)
    return 0.0


def _push(url: str, job: str, model: str, registry: Any, replace: bool = True) -> bool:
    """PUT (replace the group's metrics) or POST (replace only the metrics pushed)."""
    from prometheus_client import push_to_gateway, pushadd_to_gateway

    try:
        (push_to_gateway if replace else pushadd_to_gateway)(url, job=job, grouping_key={"model": model}, registry=registry, timeout=10)
    except OSError as exc:
        print(f"warning: could not push metrics to the Pushgateway at DRIFTLOOP_PUSHGATEWAY_URL={url}: {exc} "
              "(fix: check the URL and that the Pushgateway runs)", file=sys.stderr)
        return False
    return True

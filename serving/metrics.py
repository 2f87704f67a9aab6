"""Prometheus collectors of the model servers, labelled by model name and version.

The canary analysis compares two versions of one model, so every series carries
``model_version``. The prediction histogram has fixed buckets over [0, 1] so the
prediction-shift check can compute a PSI from bucket counts alone (from Prometheus or
from a server's own ``/metrics``).

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> m = ServingMetrics(CollectorRegistry())
>>> m.observe("churn", "2", latency_s=0.004, predictions=[0.7])
>>> m.error("churn", "2", "server")
>>> text = generate_latest(m.registry).decode()
>>> 'driftloop_requests_total{model_name="churn",model_version="2"} 2.0' in text
True
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

REQUESTS = "driftloop_requests_total"
ERRORS = "driftloop_request_errors_total"
LATENCY = "driftloop_request_latency_seconds"
PREDICTION = "driftloop_prediction"
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
PREDICTION_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
LABELS = ("model_name", "model_version")


class ServingMetrics:
    """The four collectors (requests, errors, latency, prediction) on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(REQUESTS.removesuffix("_total"), "Inference requests (errors included).", LABELS, registry=registry)
        self.errors = Counter(ERRORS.removesuffix("_total"), "Failed inference requests by kind: client (4xx) or server (5xx).", (*LABELS, "kind"), registry=registry)
        self.latency = Histogram(LATENCY, "Server-side request latency.", LABELS, buckets=LATENCY_BUCKETS, registry=registry)
        self.prediction = Histogram(PREDICTION, "Distribution of predicted P(label=1).", LABELS, buckets=PREDICTION_BUCKETS, registry=registry)

    def observe(self, model: str, version: str, latency_s: float, predictions: Sequence[float] = ()) -> None:
        """Count one served request and the predictions it returned."""
        self.requests.labels(model, version).inc()
        self.latency.labels(model, version).observe(latency_s)
        hist = self.prediction.labels(model, version)
        for p in predictions:
            hist.observe(p)

    def error(self, model: str, version: str, kind: str) -> None:
        """Count a failed request; ``kind`` is ``client`` (bad input) or ``server``."""
        self.requests.labels(model, version).inc()
        self.errors.labels(model, version, kind).inc()


@functools.cache
def default_metrics() -> ServingMetrics:
    """The process-wide collectors on the global registry that KServe's ``/metrics`` serves."""
    return ServingMetrics(REGISTRY)

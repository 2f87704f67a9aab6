"""Metric sources for the canary analysis: Prometheus over its HTTP API, or the model
servers' own ``/metrics`` when no Prometheus is configured.

A source is two methods (flagger's provider idea): ``query(promql) -> list[Sample]`` and
``is_online() -> bool``. The direct source understands the one PromQL form the controller
needs, an instant-vector selector ``name{label="value", ...}``, so the same queries run
against both. :func:`arm_snapshot` reads one model version's counters and histograms.

>>> parse_selector('driftloop_requests_total{model_name="churn",model_version="2"}')
('driftloop_requests_total', {'model_name': 'churn', 'model_version': '2'})
>>> histogram_quantile(0.5, [(0.01, 10.0), (0.1, 20.0), (float("inf"), 20.0)])
0.01
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from components.errors import ConfigError, ServiceUnavailable
from serving.metrics import ERRORS, LATENCY, PREDICTION, REQUESTS

_SELECTOR = re.compile(r'^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$')
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


@dataclass(frozen=True)
class Sample:
    """One series value: metric name, labels, value."""

    name: str
    labels: dict[str, str]
    value: float


class MetricsSource(Protocol):
    """Where live metrics come from."""

    def query(self, promql: str) -> list[Sample]: ...

    def is_online(self) -> bool: ...


def parse_selector(promql: str) -> tuple[str, dict[str, str]]:
    """Split ``name{a="x",b="y"}`` into name and equality matchers; other PromQL is a ConfigError."""
    m = _SELECTOR.match(promql)
    if not m:
        raise ConfigError(f"query {promql!r} is not an instant-vector selector", fix="configure Prometheus (DRIFTLOOP_PROMETHEUS_URL) for full PromQL")
    name, body = m.group(1), (m.group(2) or "").strip()
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        lm = _MATCHER.match(body, pos)
        if not lm:
            raise ConfigError(f"query {promql!r}: only label=\"value\" matchers are supported here", fix="configure Prometheus for full PromQL")
        labels[lm.group(1)] = lm.group(2)
        pos = lm.end()
    return name, labels


class DirectSource:
    """Scrape model servers' ``/metrics`` on every query (no Prometheus needed)."""

    def __init__(self, targets: Sequence[str] | Callable[[], Sequence[str]], timeout: float = 5.0, cache_seconds: float = 0.5) -> None:
        self._targets = targets
        self.timeout = timeout
        # One scrape serves the several selector queries of a snapshot.
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[Sample]]] = {}

    @property
    def targets(self) -> list[str]:
        return list(self._targets() if callable(self._targets) else self._targets)

    def query(self, promql: str) -> list[Sample]:
        import httpx
        from prometheus_client.parser import text_string_to_metric_families

        name, matchers = parse_selector(promql)
        out: list[Sample] = []
        for base in self.targets:
            now = time.monotonic()
            cached = self._cache.get(base)
            if cached is None or now - cached[0] > self.cache_seconds:
                try:
                    text = httpx.get(f"{base.rstrip('/')}/metrics", timeout=self.timeout).text
                except httpx.HTTPError as exc:
                    raise ServiceUnavailable(f"model server {base} did not answer /metrics: {exc}", fix="check that the server is running") from None
                # the target is the series' instance, as Prometheus would label it: counters reset per pod
                samples = [Sample(s.name, {"instance": base, **s.labels}, float(s.value)) for f in text_string_to_metric_families(text) for s in f.samples]
                cached = self._cache[base] = (now, samples)
            out += [s for s in cached[1] if s.name == name and all(s.labels.get(k) == v for k, v in matchers.items())]
        return out

    def is_online(self) -> bool:
        import httpx

        targets = self.targets
        if not targets:
            return False
        try:
            return all(httpx.get(f"{t.rstrip('/')}/metrics", timeout=self.timeout).status_code == 200 for t in targets)
        except httpx.HTTPError:
            return False


class PrometheusSource:
    """PromQL over Prometheus's HTTP API (``/api/v1/query``)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str) -> list[Sample]:
        data = self._query(promql)
        if data["resultType"] == "scalar":
            return [Sample("scalar", {}, float(data["result"][1]))]
        return [Sample(res["metric"].get("__name__", ""), dict(res["metric"]), float(res["value"][1])) for res in data["result"]]

    def counter_since(self, promql: str, since: float) -> list[Sample]:
        """Each counter series of ``promql`` made monotonic over the span since ``since`` (epoch seconds).

        A series' value is its last sample plus the sample before every drop in the span, so
        the counts of a pod that restarted (its counter back at 0, or a new series beside the
        old one) are kept; two calls with the same ``since`` can be subtracted as plain
        counters (:meth:`ArmSnapshot.minus`). The span reaches one minute before ``since`` so
        the value at ``since`` itself is in it.
        """
        window = max(int(time.time() - since) + 60, 60)
        data = self._query(f"{promql}[{window}s]")
        out = []
        for res in data["result"]:
            values = [float(v) for _, v in res.get("values", [])]
            if values:
                total = values[-1] + sum(a for a, b in zip(values, values[1:], strict=False) if b < a)
                out.append(Sample(res["metric"].get("__name__", ""), dict(res["metric"]), total))
        return out

    def _query(self, promql: str) -> dict[str, Any]:
        import httpx

        try:
            r = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"Prometheus at {self.url} is unreachable: {exc}", fix="start Prometheus or fix DRIFTLOOP_PROMETHEUS_URL") from None
        body = _json_body(r, self.url)
        if r.status_code >= 500 or body.get("status") != "success" and r.status_code in (429, 503):
            raise ServiceUnavailable(f"Prometheus at {self.url} answered {r.status_code}: {body.get('error', '')}", fix="retry later or check Prometheus")
        if body.get("status") != "success":
            raise ConfigError(f"Prometheus rejected {promql!r}: {body.get('error')}", fix="correct the query")
        return dict(body["data"])

    def is_online(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url}/-/ready", timeout=self.timeout).status_code == 200
        except httpx.HTTPError:
            return False


def _json_body(r: Any, url: str) -> dict[str, Any]:
    """The response's JSON object; a proxy's plain-text 502/503 page is the service being down, not a crash."""
    try:
        body = r.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        snippet = r.text[:80].replace("\n", " ")
        raise ServiceUnavailable(f"Prometheus at {url} answered {r.status_code} with no JSON: {snippet!r}",
                                 fix="check Prometheus (or the proxy in front of it) and retry")
    return body


def source_from_settings(prometheus_url: str, targets: Sequence[str] | Callable[[], Sequence[str]]) -> MetricsSource:
    """Prometheus when a URL is configured, else the servers' own /metrics."""
    return PrometheusSource(prometheus_url) if prometheus_url else DirectSource(targets)


SeriesKey = tuple[str, float | None, tuple[tuple[str, str], ...]]  # (kind, le, labels)


@dataclass(frozen=True)
class ArmSnapshot:
    """Cumulative counters of one model version at one moment.

    ``series`` keeps each pod's counter apart, so :meth:`minus` detects a reset per series
    before summing (a restarted pod's errors before the restart are not lost):

    >>> before = ArmSnapshot.from_series({("errors", None, (("instance", "a"),)): 5.0, ("errors", None, (("instance", "b"),)): 9.0})
    >>> after = ArmSnapshot.from_series({("errors", None, (("instance", "a"),)): 7.0, ("errors", None, (("instance", "b"),)): 3.0})
    >>> after.errors, after.minus(before).errors  # b restarted and counted 3 since; a added 2
    (10.0, 5.0)
    """

    requests: float = 0.0
    errors: float = 0.0
    latency_buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    prediction_buckets: dict[float, float] = field(default_factory=dict)
    series: dict[SeriesKey, float] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_series(cls, series: dict[SeriesKey, float]) -> ArmSnapshot:
        """Sum per-series values into the arm's totals."""
        totals: dict[str, float] = defaultdict(float)
        hist: dict[str, dict[float, float]] = {"latency": defaultdict(float), "prediction": defaultdict(float)}
        for (kind, le, _), value in series.items():
            if le is None:
                totals[kind] += value
            else:
                hist[kind][le] += value
        return cls(totals["requests"], totals["errors"], dict(hist["latency"]), dict(hist["prediction"]), dict(series))

    def minus(self, earlier: ArmSnapshot) -> ArmSnapshot:
        """Increase since ``earlier`` (a counter reset counts from zero), per series when known."""
        def d(a: float, b: float) -> float:
            return a - b if a >= b else a

        if self.series:
            return ArmSnapshot.from_series({k: d(v, earlier.series.get(k, 0.0)) for k, v in self.series.items()})
        return ArmSnapshot(
            d(self.requests, earlier.requests), d(self.errors, earlier.errors),
            {le: d(v, earlier.latency_buckets.get(le, 0.0)) for le, v in self.latency_buckets.items()},
            {le: d(v, earlier.prediction_buckets.get(le, 0.0)) for le, v in self.prediction_buckets.items()},
        )

    def latency_quantile(self, q: float) -> float | None:
        return histogram_quantile(q, sorted(self.latency_buckets.items()))

    def prediction_counts(self) -> list[float]:
        """Per-bucket (not cumulative) prediction counts."""
        cum = [v for _, v in sorted(self.prediction_buckets.items())]
        return [b - a for a, b in zip([0.0, *cum], cum, strict=False)]


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile over (le, cumulative count) pairs; None if empty."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def arm_snapshot(source: MetricsSource, model: str, version: str, since: float | None = None) -> ArmSnapshot:
    """One version's series over every server instance the source sees, kept apart per series.

    With ``since`` (epoch seconds, the rollout's start) a source that keeps history
    (:meth:`PrometheusSource.counter_since`) gives counters that survive pod restarts within
    the rollout; the servers' own /metrics cannot (their counters are all there is).
    """
    sel = f'model_name="{model}",model_version="{version}"'
    series: dict[SeriesKey, float] = {}
    counter_since = getattr(source, "counter_since", None) if since is not None else None

    def add(kind: str, query: str, histogram: bool = False) -> None:
        for s in (counter_since(query, since) if counter_since is not None else source.query(query)):
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("le", "__name__")))
            le = float(s.labels["le"]) if histogram else None
            series[(kind, le, labels)] = series.get((kind, le, labels), 0.0) + s.value

    add("requests", f"{REQUESTS}{{{sel}}}")
    add("errors", f'{ERRORS}{{{sel},kind="server"}}')
    add("latency", f"{LATENCY}_bucket{{{sel}}}", histogram=True)
    add("prediction", f"{PREDICTION}_bucket{{{sel}}}", histogram=True)
    return ArmSnapshot.from_series(series)

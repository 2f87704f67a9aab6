"""Metric sources against real servers: a KServe predictor's /metrics read directly, and
the same series through a real Prometheus scraping it every second."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from serving_fixtures import MODEL, NUMERIC, free_port, predictor_process, start_prometheus

from components.errors import ConfigError, ServiceUnavailable
from serving.prometheus import DirectSource, PrometheusSource, arm_snapshot, source_from_settings

pytestmark = pytest.mark.integration


def test_direct_and_prometheus_sources_agree(store, tmp_path: Path) -> None:
    with predictor_process(store, f"models:/{MODEL}/{store.versions['good1']}", tmp_path / "log") as url:
        inst = dict.fromkeys(NUMERIC, 0.1) | {"segment": "b"}
        for _ in range(30):
            assert httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": [inst, inst]}).status_code == 200
        httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": [{"x1": 1}]})  # a client error
        direct = DirectSource([url])
        assert direct.is_online()
        version = store.versions["good1"]
        snap = arm_snapshot(direct, MODEL, version)
        assert snap.requests == 31 and snap.errors == 0  # client errors are not server errors
        assert sum(snap.prediction_counts()) == 60
        assert 0 < snap.latency_quantile(0.95) < 1.0

        proc, prom_url = start_prometheus(tmp_path, [url])
        try:
            prom = PrometheusSource(prom_url)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (prom.is_online() and prom.query(f'driftloop_requests_total{{model_version="{version}"}}')):
                time.sleep(0.5)
            via_prom = arm_snapshot(prom, MODEL, version)
            assert via_prom.requests == snap.requests and via_prom.prediction_buckets == snap.prediction_buckets
            # full PromQL works only through Prometheus
            total = prom.query(f'sum(driftloop_prediction_count{{model_name="{MODEL}"}})')
            assert total[0].value == 60
            with pytest.raises(ConfigError, match="instant-vector selector"):
                direct.query("sum(driftloop_prediction_count)")
            with pytest.raises(ConfigError, match="Prometheus rejected"):
                prom.query("sum(")
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_unreachable_sources() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    assert not PrometheusSource(dead, timeout=1).is_online()
    assert not DirectSource([dead], timeout=1).is_online()
    with pytest.raises(ServiceUnavailable, match="Prometheus at"):
        PrometheusSource(dead, timeout=1).query("up")
    with pytest.raises(ServiceUnavailable, match="did not answer /metrics"):
        DirectSource([dead], timeout=1).query("up")
    assert isinstance(source_from_settings("", [dead]), DirectSource)
    assert isinstance(source_from_settings(dead, []), PrometheusSource)


class _Answer:
    """A tiny HTTP server that answers every GET with a fixed status, content type and body."""

    def __init__(self, status: int, body: str, ctype: str = "text/plain") -> None:
        import http.server
        import threading

        answer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.ctype)
                self.end_headers()
                self.wfile.write(answer.body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.status, self.body, self.ctype = status, body, ctype
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("status", "body", "ctype"), [
    (503, "Service Unavailable", "text/plain"),
    (502, "<html>Bad Gateway</html>", "text/html"),
    (200, "not json at all", "text/plain"),
    (503, '{"status": "error", "error": "query timed out"}', "application/json"),
])
def test_prometheus_down_or_plain_text_is_service_unavailable(status: int, body: str, ctype: str) -> None:
    server = _Answer(status, body, ctype)
    try:
        with pytest.raises(ServiceUnavailable, match=f"answered {status}"):
            PrometheusSource(server.url, timeout=2).query("up")
    finally:
        server.close()


def test_counter_reset_is_detected_per_pod_before_summing() -> None:
    from serving.prometheus import Sample

    class TwoPods:
        def __init__(self) -> None:
            self.values = {"a": (100.0, 4.0), "b": (100.0, 6.0)}

        def query(self, promql: str) -> list[Sample]:
            i = 0 if "requests_total" in promql else 1 if "errors_total" in promql else None
            return [] if i is None else [Sample("x", {"instance": pod, "model_version": "2"}, v[i]) for pod, v in self.values.items()]

        def is_online(self) -> bool:
            return True

    source = TwoPods()
    before = arm_snapshot(source, MODEL, "2")
    source.values = {"a": (150.0, 5.0), "b": (40.0, 3.0)}  # pod b restarted: 40 requests, 3 errors since
    delta = arm_snapshot(source, MODEL, "2").minus(before)
    # summed first, 190 < 200 and 8 < 10 would look like one reset: 190 requests, 8 errors
    assert (delta.requests, delta.errors) == (50.0 + 40.0, 1.0 + 3.0)

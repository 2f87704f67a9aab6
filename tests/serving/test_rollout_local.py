"""Canary rollouts end to end on real processes: router + two KServe predictors, live
traffic, metrics from the servers' /metrics, labels joined from the prediction log."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from serving_fixtures import (
    MODEL,
    free_port,
    live_traffic,
    policy_dict,
    predictor_process,
    start_prometheus,
)

from components.policy import policy_from_dict
from components.settings import Settings
from serving.canary.local import LocalBackend
from serving.canary.rollout import roll_out
from serving.prometheus import DirectSource, PrometheusSource

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def champion(store, tmp_path_factory: pytest.TempPathFactory):
    """One champion process (version good1) shared by the rollouts; each test brings its own
    router and challenger. Metrics are diffed from the rollout's start, so sharing is safe."""
    log_dir = tmp_path_factory.mktemp("predlog")
    with predictor_process(store, f"models:/{MODEL}/{store.versions['good1']}", log_dir) as url:
        yield url, log_dir


def rollout(store, registry, champion, tmp_path: Path, version: str, challenger_args=(), prometheus: bool = False, **overrides):
    policy = policy_from_dict(policy_dict(**overrides))
    url, log_dir = champion
    lines: list[str] = []
    challenger_port = free_port()
    with LocalBackend(MODEL, f"models:/{MODEL}@champion", tracking_uri=store.tracking_uri, log_dir=log_dir, challenger_port=challenger_port,
                      work_dir=tmp_path / "servers", challenger_args=challenger_args, champion_url=url) as backend, ExitStack() as stack:
        backend.start()
        source: object = DirectSource(backend.metrics_targets)
        if prometheus:  # a real Prometheus scraping both servers every second
            proc, prom_url = start_prometheus(tmp_path, [url, f"http://127.0.0.1:{challenger_port}"])
            stack.callback(proc.wait, 20)
            stack.callback(proc.terminate)
            source = PrometheusSource(prom_url)
        with live_traffic(backend.url, threads=4) as traffic:
            settings = Settings(workdir=tmp_path / "work", mlflow_tracking_uri=store.tracking_uri)
            result = roll_out(policy, settings, backend, challenger_uri=f"models:/{MODEL}/{version}", labels=traffic.labels,
                              log_dir=log_dir, registry=registry, metrics_source=source, on_step=lines.append)
            final_traffic = backend.current_traffic()
    return result, traffic, lines, final_traffic


def test_good_challenger_is_promoted_without_failed_requests(store, registry, champion, tmp_path: Path, artifacts_dir: Path) -> None:
    result, traffic, lines, final = rollout(store, registry, champion, tmp_path, store.versions["good2"])
    assert result.outcome == "promoted", lines
    from serving.canary.chart import write_rollout_report

    assert write_rollout_report(result, artifacts_dir / "rollout-promoted.html").stat().st_size > 100_000
    assert [s["percent"] for s in result.steps if s["decision"] != "hold"] == [50, 100]
    assert str(registry.get(MODEL, "champion").version) == store.versions["good2"]
    event = registry.history(MODEL)[-1]
    assert event["event"] == "promote" and str(event["previous"]) == store.versions["good1"]
    assert traffic.failures() == [] and len(traffic.results) > 100
    served = {r[2] for r in traffic.results}
    assert served == {"champion", "challenger"}
    assert final == 0  # the promoted model now is the router's champion


def test_failing_challenger_is_rolled_back_in_one_interval(store, registry, champion, tmp_path: Path) -> None:
    result, traffic, lines, final = rollout(store, registry, champion, tmp_path, store.versions["good2"], ["--inject-error-rate", "0.3"])
    assert result.outcome == "rolled_back", lines
    assert len(result.steps) == 1 and result.reason.startswith("error_rate ")
    assert str(registry.get(MODEL, "champion").version) == store.versions["good1"]
    event = registry.history(MODEL)[-1]
    assert event["event"] == "rollback" and "error_rate" in event["reason"] and registry.get(MODEL, "challenger") is None
    # every failed request was a 500 from the challenger; none failed because of a shift
    fails = traffic.failures()
    assert fails and {(s, by) for _, s, by, _ in fails} == {(500, "challenger")}
    assert final == 0


def test_slow_challenger_is_rolled_back(store, registry, champion, tmp_path: Path) -> None:
    result, traffic, lines, _ = rollout(store, registry, champion, tmp_path, store.versions["good2"], ["--inject-latency-ms", "150"])
    assert result.outcome == "rolled_back", lines
    assert len(result.steps) == 1 and result.reason.startswith("latency_p95"), lines
    assert traffic.failures() == []


def test_worse_challenger_is_rolled_back_on_labelled_accuracy(store, registry, champion, tmp_path: Path) -> None:
    checks = [{"metric": "error_rate", "max": 0.01}, {"metric": "accuracy", "max_drop": 0.02}]
    result, traffic, lines, _ = rollout(store, registry, champion, tmp_path, store.versions["bad"], checks=checks, interval_seconds=3)
    assert result.outcome == "rolled_back", lines
    assert result.steps[-1]["percent"] == 50 and result.reason.startswith("accuracy"), lines
    assert traffic.failures() == []


def test_failing_challenger_is_rolled_back_on_prometheus_metrics(store, registry, champion, tmp_path: Path) -> None:
    result, traffic, lines, final = rollout(store, registry, champion, tmp_path, store.versions["good2"], ["--inject-error-rate", "0.3"],
                                            prometheus=True, interval_seconds=3)
    assert result.outcome == "rolled_back", lines
    assert result.reason.startswith("error_rate "), lines
    assert final == 0 and {s for _, s, by, _ in traffic.failures()} == {500}

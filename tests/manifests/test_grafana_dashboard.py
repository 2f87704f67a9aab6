"""The Grafana dashboard (manifests/base/grafana-dashboard.json, provisioned by ConfigMap):
every query names a metric the code exports, and every query is valid PromQL (promtool)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_checks import MANIFESTS, build

pytestmark = pytest.mark.unit


def _dashboard() -> dict[str, Any]:
    maps = [o for o in build(MANIFESTS / "overlays" / "prod") if o["kind"] == "ConfigMap" and o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    assert len(maps) == 1, "one ConfigMap labelled grafana_dashboard=1 (Grafana's sidecar loads it)"
    return json.loads(maps[0]["data"]["driftloop.json"])


def _queries(dash: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return exprs


def _metrics(expr: str) -> set[str]:
    return set(re.findall(r"\b(driftloop_[a-z_]+)\b", expr))


def _exported() -> set[str]:
    from components.features.view_metrics import EXPORTED as VIEW_EXPORTED
    from components.metrics_push import EXPORTED
    from serving.metrics import ERRORS, LATENCY, PREDICTION, REQUESTS

    histograms = {f"{h}_{s}" for h in (LATENCY, PREDICTION) for s in ("bucket", "sum", "count")}
    return set(EXPORTED) | set(VIEW_EXPORTED) | {REQUESTS, ERRORS} | histograms


def test_every_query_names_a_metric_the_code_exports() -> None:
    queries = _queries(_dashboard())
    assert len(queries) >= 10
    for q in queries:
        assert _metrics(q), f"query names no driftloop metric: {q}"
        assert not _metrics(q) - _exported(), f"{q} names metrics nothing exports: {sorted(_metrics(q) - _exported())}"


def test_the_dashboard_covers_drift_performance_decisions_and_the_canary() -> None:
    named = set().union(*(_metrics(q) for q in _queries(_dashboard())))
    assert {"driftloop_monitor_statistic", "driftloop_monitor_fired", "driftloop_decision", "driftloop_decisions_total",
            "driftloop_canary_traffic_percent", "driftloop_canary_rollbacks_total", "driftloop_canary_promotions_total",
            "driftloop_requests_total", "driftloop_feature_view_blocked", "driftloop_feature_view_drifted_features"} <= named
    queries = " ".join(_queries(_dashboard()))
    assert "feature" in queries and "segment" in queries  # drift per feature, performance per segment
    ids = [p["id"] for p in _dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: apt-get install prometheus (Debian's package ships promtool)")
    exprs = [t["expr"] for p in _dashboard()["panels"] for t in p.get("targets", [])]
    # Grafana substitutes $model before the query runs; a recording rule per query lets promtool parse them all.
    rules = [{"record": f"dashboard:query_{i}", "expr": e.replace("$model", ".*")} for i, e in enumerate(exprs)]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = subprocess.run([promtool, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_metric_check_catches_an_unknown_metric() -> None:
    assert _metrics('rate(driftloop_no_such_metric_total[5m])') - _exported() == {"driftloop_no_such_metric_total"}

"""The PrometheusRule's alerts pass `promtool check rules` and their unit tests in
tests/manifests/rules_test.yaml, which cover every alert firing and staying quiet."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_checks import MANIFESTS, build

pytestmark = pytest.mark.unit

RULES_TEST = Path(__file__).with_name("rules_test.yaml")


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: apt-get install prometheus (Debian's package ships promtool)")
    return path


def _groups() -> list[dict[str, Any]]:
    rules = [o for o in build(MANIFESTS / "overlays" / "prod") if o["kind"] == "PrometheusRule"]
    assert len(rules) == 1
    return rules[0]["spec"]["groups"]


def _promtool_test(tmp_path: Path, groups: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    check = subprocess.run([_promtool(), "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    return subprocess.run([_promtool(), "test", "rules", RULES_TEST.name], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_alert_unit_tests_pass(tmp_path: Path) -> None:
    result = _promtool_test(tmp_path, _groups())
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = {r["alert"] for g in _groups() for r in g["rules"] if "alert" in r}
    cases = [c for t in yaml.safe_load(RULES_TEST.read_text())["tests"] for c in t["alert_rule_test"]]
    assert alerts == {c["alertname"] for c in cases}
    for alert in alerts:
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in mine), f"{alert} has no case where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{alert} has no case where it stays quiet"


def test_every_alert_is_labelled_and_explained() -> None:
    for group in _groups():
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


@pytest.mark.parametrize(
    ("alert", "field", "value"),
    [
        ("DriftloopHighErrorRate", "for", "0m"),  # would fire on a single bad scrape
        ("DriftloopDataDrift", "expr", 'max by (namespace, model, monitor) (driftloop_monitor_fired) > 0'),  # any type
        ("DriftloopCanaryStuck", "expr", "max by (namespace, model) (driftloop_canary_traffic_percent) > 0"),  # 100% too
    ],
)
def test_unit_tests_catch_a_broken_rule(tmp_path: Path, alert: str, field: str, value: str) -> None:
    groups = _groups()
    rule = next(r for g in groups for r in g["rules"] if r.get("alert") == alert)
    rule[field] = value
    result = _promtool_test(tmp_path, groups)
    assert result.returncode != 0 and alert in result.stdout + result.stderr


def test_every_metric_the_alert_rules_name_is_exported() -> None:
    """Issue 12, defect 7: the alerts named metrics nothing exported, so they could never fire."""
    import re

    from components.features.view_metrics import EXPORTED as VIEW_EXPORTED
    from components.metrics_push import EXPORTED
    from serving.metrics import ERRORS, LATENCY, PREDICTION, REQUESTS

    named = {m for g in _groups() for r in g["rules"] for m in re.findall(r"\b(driftloop_[a-z_]+)", r["expr"])}
    scraped = {REQUESTS, ERRORS, PREDICTION, *(f"{LATENCY}_{s}" for s in ("bucket", "sum", "count")), *VIEW_EXPORTED}
    assert {"driftloop_monitor_fired", "driftloop_canary_rollbacks_total", "driftloop_canary_traffic_percent"} <= named
    assert not named - set(EXPORTED) - scraped, f"alert rules name metrics nothing exports: {sorted(named - set(EXPORTED) - scraped)}"

"""The upstream event store: one event per view and window, each reader's inbox, acknowledgement."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.settings import POLICY_DIR, Settings
from components.upstream import (
    acknowledge_upstream,
    model_services,
    readers_of,
    record_upstream_event,
    upstream_events,
    upstream_reasons,
)

pytestmark = pytest.mark.unit

SERVICES = {"churn_v1": {"churn_features": ["monthly_charges", "contract"]}, "retention_v1": {"churn_features": ["tenure_months"]},
            "fraud_v1": {"fraud_features": ["amount"]}}
MODELS = {"churn": "churn_v1", "retention": "retention_v1", "fraud": "fraud_v1", "adhoc": None}


def test_readers_are_the_models_whose_service_projects_the_view() -> None:
    assert readers_of("churn_features", SERVICES, MODELS) == {"churn": ["monthly_charges", "contract"], "retention": ["tenure_months"]}
    assert readers_of("credit_features", SERVICES, MODELS) == {}


def test_bundled_policies_map_to_their_services() -> None:
    services = model_services(POLICY_DIR)
    assert services["churn"] == "churn_v1" and set(services) >= {"churn", "credit", "fraud", "recsys", "concept"}


def test_a_model_is_told_only_about_features_it_reads(tmp_path: Path) -> None:
    settings = Settings(workdir=tmp_path)
    readers = readers_of("churn_features", SERVICES, MODELS)
    event = record_upstream_event("churn_features", ["contract"], readers, {"start": "s", "end": "e"}, settings)
    assert event["models"] == ["churn"]
    assert upstream_reasons("retention", settings) == []
    assert upstream_reasons("churn", settings) == ["upstream feature drift in churn_features: contract"]


def test_events_accumulate_until_acknowledged_and_reruns_replace(tmp_path: Path) -> None:
    settings = Settings(workdir=tmp_path)
    readers = readers_of("churn_features", SERVICES, MODELS)
    record_upstream_event("churn_features", ["contract"], readers, {"start": "2025-05", "end": "2025-06"}, settings)
    record_upstream_event("churn_features", ["monthly_charges"], readers, {"start": "2025-06", "end": "2025-07"}, settings)
    record_upstream_event("churn_features", ["monthly_charges", "contract"], readers, {"start": "2025-06", "end": "2025-07"}, settings)
    assert [e["features"] for e in upstream_events("churn", settings)] == [["contract"], ["monthly_charges", "contract"]]
    assert acknowledge_upstream("churn", settings) == 2
    assert upstream_reasons("churn", settings) == [] and acknowledge_upstream("churn", settings) == 0


def test_no_reader_writes_nothing(tmp_path: Path) -> None:
    settings = Settings(workdir=tmp_path / "w")
    event = record_upstream_event("credit_features", ["income"], {}, {"start": "s", "end": "e"}, settings)
    assert event["models"] == [] and not (settings.workdir / "upstream.db").exists()
    assert upstream_reasons("credit", settings) == []


def test_the_next_decision_names_upstream_drift_and_acknowledges_it_once_acted_on(tmp_path) -> None:
    """Fan-out reaches the decision: the reason shows, and a claimed retrain clears the inbox."""
    from components.decision import DecisionLedger, decide_once
    from components.monitor.results import MonitorReport
    from components.policy import resolve_policy
    from components.settings import Settings
    from components.upstream import record_upstream_event, upstream_reasons

    settings = Settings(workdir=tmp_path / "work")
    record_upstream_event("churn_features", ["monthly_charges"], {"churn": ["monthly_charges", "contract"]},
                          {"start": "2025-07-01", "end": "2025-08-01"}, settings)
    ledger = DecisionLedger(tmp_path / "decisions.db")
    report = MonitorReport("churn", "3", {"start": "2025-07-01", "end": "2025-08-01"}, [], {}, "now")
    quiet, _ = decide_once(resolve_policy("churn"), report, ledger, upstream_workdir=settings.workdir)
    assert any("upstream feature drift in churn_features: monthly_charges" in r for r in quiet.reasons)
    assert quiet.action == "none", "churn's policy names no action for upstream drift: it is only reported"
    assert upstream_reasons("churn", settings), "a decision that does not retrain leaves the event pending"
    acted, fresh = decide_once(resolve_policy("churn"), report, ledger, emergency=True, upstream_workdir=settings.workdir)
    assert fresh and any(r.startswith("upstream feature drift") for r in acted.reasons)
    assert upstream_reasons("churn", settings) == [], "a claimed retrain acknowledges the event"


def test_a_policy_may_let_upstream_drift_alone_trigger_a_retrain(tmp_path) -> None:
    from components.decision import DecisionLedger, decide_once
    from components.monitor.results import MonitorReport
    from components.policy import policy_from_dict
    from components.settings import Settings
    from components.upstream import record_upstream_event

    raw = {"model": "churn", "entity": "customer_id", "label": "churned", "features": ["monthly_charges"],
           "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.8}],
           "actions": [{"when": ["acc"], "strategy": "full"},
                       {"when": ["upstream_feature_drift"], "strategy": "recent_window", "window": "90d"}]}
    policy = policy_from_dict(raw)
    settings = Settings(workdir=tmp_path / "work")
    report = MonitorReport("churn", "3", {"start": "2025-07-01", "end": "2025-08-01"}, [{"name": "acc", "fired": False}], {}, "now")
    ledger = DecisionLedger(tmp_path / "decisions.db")
    assert decide_once(policy, report, ledger, upstream_workdir=settings.workdir)[0].action == "none", "nothing upstream yet"
    record_upstream_event("churn_features", ["monthly_charges"], {"churn": ["monthly_charges"]}, {"start": "a", "end": "b"}, settings)
    decision, fresh = decide_once(policy, report, ledger, upstream_workdir=settings.workdir)
    assert fresh and decision.action == "retrain" and decision.strategy == "recent_window"
    assert decision.triggered_by == ("upstream_feature_drift",)
    bad = {**raw, "actions": [{"when": ["upstream_drift_typo"], "strategy": "full"}]}
    from components.errors import ConfigError

    with pytest.raises(ConfigError, match="upstream_feature_drift"):
        policy_from_dict(bad)

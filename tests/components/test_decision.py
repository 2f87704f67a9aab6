"""The decision: action precedence, strategy/window/cohort, deterministic keys, the ledger."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from components.decision import Decision, DecisionLedger, decide
from components.policy import Policy, policy_from_dict

pytestmark = pytest.mark.unit
WINDOW = {"start": "2025-08-01T00:00:00+00:00", "end": "2025-08-31T00:00:00+00:00", "rows": 100}
# Policies written here, not the seed files, so the precedence rules are tested on fixed actions.
_MONITORS = {
    "accuracy_floor": {"type": "performance", "metric": "accuracy", "min": 0.85},
    "recall_floor": {"type": "performance", "metric": "recall", "min": 0.5},
    "subprime_gini": {"type": "performance", "metric": "gini", "max_relative_drop": 0.05},
    "prime_gini": {"type": "performance", "metric": "gini", "max_relative_drop": 0.05},
    "feature_drift": {"type": "feature_drift"},
    "error_stream": {"type": "concept_drift"},
    "category_psi": {"type": "feature_drift", "fire_on": "psi"},
    "cohort_ctr": {"type": "sequential", "cohort_column": "user_cohort"},
}
_ACTIONS = {
    "churn": [{"when": ["accuracy_floor"], "strategy": "full"}, {"when": ["feature_drift"], "action": "alert"}],
    "fraud": [{"when": ["error_stream", "recall_floor"], "strategy": "emergency", "window": "48h", "min_rows": 2000, "priority": 10},
              {"when": ["feature_drift"], "action": "alert"}],
    "recsys": [{"when": ["category_psi"], "strategy": "recent_window", "window": "14d"},
               {"when": ["cohort_ctr"], "strategy": "cohort", "upweight": 3, "priority": 5}],
    "credit": [{"when": ["subprime_gini", "prime_gini"], "strategy": "recent_window", "window": "12M"},
               {"when": ["feature_drift"], "action": "alert"}],
}


def load_policy(name: str) -> Policy:
    used = sorted({m for a in _ACTIONS[name] for m in a["when"]})
    return policy_from_dict({"model": name, "entity": "id", "label": "y", "features": ["x"],
                             "monitors": [{"name": m, **_MONITORS[m]} for m in used], "actions": _ACTIONS[name]})


def _m(name: str, fired: bool, summary: str = "", results: list | None = None, type_: str = "performance") -> dict:
    return {"name": name, "type": type_, "fired": fired, "summary": summary or f"{name} figures", "results": results or []}


def test_nothing_fired_means_no_action() -> None:
    d = decide(load_policy("churn"), [_m("accuracy_floor", False), _m("feature_drift", False)], "1", WINDOW)
    assert (d.action, d.strategy, d.reasons, d.fired) == ("none", None, (), ())


def test_retrain_beats_alert_whatever_the_order() -> None:
    policy = load_policy("churn")  # accuracy_floor -> retrain full; feature_drift -> alert
    d = decide(policy, [_m("accuracy_floor", True, "accuracy 0.81 < 0.85 (n=2400)"), _m("feature_drift", True, "2 of 7 drifted")], "1", WINDOW)
    assert (d.action, d.strategy) == ("retrain", "full")
    assert d.reasons == ("accuracy_floor: accuracy 0.81 < 0.85 (n=2400)", "feature_drift: 2 of 7 drifted")
    assert d.fired == ("accuracy_floor", "feature_drift") and d.triggered_by == ("accuracy_floor",)
    only_drift = decide(policy, [_m("accuracy_floor", False), _m("feature_drift", True)], "1", WINDOW)
    assert (only_drift.action, only_drift.strategy) == ("alert", None)


def test_emergency_carries_window_and_min_rows() -> None:
    d = decide(load_policy("fraud"), [_m("error_stream", True, type_="concept_drift"), _m("recall_floor", False), _m("feature_drift", True)], "2", WINDOW)
    assert (d.action, d.strategy, d.window, d.min_rows) == ("retrain", "emergency", "48h", 2000)


def test_higher_priority_then_policy_order() -> None:
    policy = load_policy("recsys")  # category_psi -> recent_window (priority 0); cohort_ctr -> cohort (priority 5)
    sprt = [{"segment": "power", "drift": True, "detected_at": 900}, {"segment": "casual", "drift": True, "detected_at": 120},
            {"segment": "new", "drift": False, "detected_at": None}]
    both = [_m("category_psi", True, type_="feature_drift"), _m("cohort_ctr", True, results=sprt, type_="sequential")]
    d = decide(policy, both, "4", WINDOW)
    assert (d.strategy, d.cohort, d.upweight) == ("cohort", "casual", 3.0), "earliest-detected cohort is named"
    raw = policy.model_dump(mode="json", exclude_none=True)
    for a in raw["actions"]:
        a["priority"] = 0
    tie = decide(policy_from_dict(raw), both, "4", WINDOW)
    assert (tie.strategy, tie.window, tie.cohort) == ("recent_window", "14d", None), "equal priority: first action in policy order"


def test_fixed_cohort_in_the_action_wins() -> None:
    raw = load_policy("recsys").model_dump(mode="json", exclude_none=True)
    raw["actions"][1]["cohort"] = "new"
    d = decide(policy_from_dict(raw), [_m("category_psi", False), _m("cohort_ctr", True, results=[{"segment": "casual", "drift": True, "detected_at": 5}])], "4", WINDOW)
    assert d.cohort == "new"


def test_same_inputs_same_decision_and_key() -> None:
    policy = load_policy("credit")
    monitors = [_m("subprime_gini", True, "gini 0.41 vs baseline 0.52"), _m("prime_gini", False), _m("feature_drift", True)]
    a, b = decide(policy, monitors, "3", WINDOW), decide(policy, [dict(m) for m in monitors], "3", dict(WINDOW))
    assert a == b
    assert Decision.from_dict(a.to_dict()) == a
    assert decide(policy, monitors, "4", WINDOW).idempotency_key != a.idempotency_key, "a new model version is a new decision"
    later = dict(WINDOW, start="2025-09-01T00:00:00+00:00", end="2025-09-30T00:00:00+00:00")
    assert decide(policy, monitors, "3", later).idempotency_key != a.idempotency_key, "a new window is a new decision"


def _claim(args: tuple[str, dict]) -> bool:
    path, raw = args
    return DecisionLedger(path).record(Decision.from_dict(raw))


def test_ledger_lets_only_one_process_act(tmp_path: Path) -> None:
    d = decide(load_policy("churn"), [_m("accuracy_floor", True)], "1", WINDOW)
    path = str(tmp_path / "decisions.db")
    DecisionLedger(path)  # create the table before the race
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        claims = pool.map(_claim, [(path, d.to_dict())] * 8)
    assert sum(claims) == 1
    ledger = DecisionLedger(path)
    assert ledger.seen(d.idempotency_key) and ledger.get(d.idempotency_key) == d
    other = decide(load_policy("churn"), [_m("accuracy_floor", True)], "2", WINDOW)
    assert not ledger.seen(other.idempotency_key)


def test_a_fired_monitor_no_action_names_is_reported_but_does_not_act() -> None:
    policy = policy_from_dict({"model": "m", "entity": "id", "label": "y", "features": ["x"],
                               "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.8},
                                            {"name": "watch", "type": "feature_drift"}],
                               "actions": [{"when": ["acc"]}]})
    d = decide(policy, [_m("acc", False), _m("watch", True, "x drifted")], "1", WINDOW)
    assert (d.action, d.fired, d.triggered_by, d.reasons) == ("none", ("watch",), (), ("watch: x drifted",))


def _report(policy: Policy, fired: bool, window: dict[str, object]) -> object:
    from components.monitor.results import MonitorReport

    monitors = [{"name": "accuracy_floor", "type": "performance", "fired": fired, "summary": "accuracy 0.8 < 0.85", "results": []}]
    return MonitorReport(policy.model, "3", window, monitors, decide(policy, monitors, "3", window).to_dict(), "now")


def test_decide_once_claims_a_retrain_once_and_never_claims_a_quiet_run(tmp_path: Path) -> None:
    from components.decision import decide_once

    policy, ledger = load_policy("churn"), DecisionLedger(tmp_path / "d.db")
    first, fresh = decide_once(policy, _report(policy, True, WINDOW), ledger)
    assert (first.action, fresh) == ("retrain", True) and ledger.seen(first.idempotency_key)
    again, fresh = decide_once(policy, _report(policy, True, WINDOW), ledger)
    assert again.idempotency_key == first.idempotency_key and fresh is False
    quiet, fresh = decide_once(policy, _report(policy, False, {**WINDOW, "end": "2025-09-30"}), ledger)
    assert (quiet.action, fresh) == ("none", True) and not ledger.seen(quiet.idempotency_key)


def test_emergency_retrains_with_the_policy_action_whatever_fired_once_per_window(tmp_path: Path) -> None:
    from components.decision import decide_once, emergency_decision

    policy, ledger = load_policy("fraud"), DecisionLedger(tmp_path / "d.db")
    d = emergency_decision(policy, "3", WINDOW, ["error_stream"])
    assert (d.action, d.strategy, d.window, d.min_rows, d.priority) == ("retrain", "emergency", "48h", 2000, 10)
    assert d.reasons == ("manual emergency trigger", "error_stream: fired")
    no_action = emergency_decision(load_policy("churn"), "3", WINDOW, [])
    assert no_action.window is None and no_action.min_rows is None  # the training set's default window applies
    quiet = _report(load_policy("churn"), False, WINDOW)
    first, fresh = decide_once(policy, quiet, ledger, emergency=True)
    assert first.strategy == "emergency" and fresh is True
    assert decide_once(policy, quiet, ledger, emergency=True)[1] is False
    other_window = _report(load_policy("churn"), False, {**WINDOW, "end": "2025-09-30"})
    assert decide_once(policy, other_window, ledger, emergency=True)[1] is True


class _Clock:
    """A settable clock, so lease expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ledger_cycle(target: object) -> None:
    """Claim -> fail -> claimable again; claim -> done -> never again: the same on every backend."""
    from components.decision import decide_once

    policy, clock = load_policy("churn"), _Clock()
    ledger = DecisionLedger(target, lease_seconds=60, clock=clock)  # type: ignore[arg-type]
    report = _report(policy, True, WINDOW)
    d, fresh = decide_once(policy, report, ledger)
    assert fresh and ledger.state(d.idempotency_key) == "claimed"
    assert decide_once(policy, report, ledger)[1] is False, "a live claim blocks a concurrent run of the window"
    clock.now += 61  # the training step died without marking the claim done
    assert decide_once(policy, report, ledger)[1] is True, "an expired claim is claimable again"
    assert ledger.release(d.idempotency_key) and decide_once(policy, report, ledger)[1] is True, "a released claim is claimable at once"
    assert ledger.mark_done(d.idempotency_key) and ledger.state(d.idempotency_key) == "done"
    clock.now += 10_000
    assert decide_once(policy, report, ledger)[1] is False, "a done retrain is never claimed again"
    assert not ledger.release(d.idempotency_key) and ledger.get(d.idempotency_key) == d


def test_ledger_claims_expire_or_release_until_the_retrain_is_done(tmp_path: Path) -> None:
    _ledger_cycle(tmp_path / "d.db")


def test_ledger_on_postgresql_is_shared_and_retrains_a_window_once(postgres_url: str) -> None:
    from components.decision import decide_once, open_ledger
    from components.settings import Settings

    _ledger_cycle(postgres_url)
    # Two pods (two ledgers, one database): a window decided twice retrains once.
    settings = Settings.from_env({"DRIFTLOOP_LEDGER_URL": postgres_url, "DRIFTLOOP_WORKDIR": "/nonexistent/pod-a"})
    policy, window = load_policy("churn"), {**WINDOW, "end": "2025-10-31"}
    first, second = open_ledger(settings), open_ledger(Settings.from_env({"DRIFTLOOP_LEDGER_URL": postgres_url, "DRIFTLOOP_WORKDIR": "/nonexistent/pod-b"}))
    assert first.url == postgres_url and first.path is None
    assert [decide_once(policy, _report(policy, True, window), ledger)[1] for ledger in (first, second)] == [True, False]


def test_ledger_keeps_rows_of_an_old_sqlite_ledger_as_done(tmp_path: Path) -> None:
    import sqlite3

    d = decide(load_policy("churn"), [_m("accuracy_floor", True)], "1", WINDOW)
    con = sqlite3.connect(tmp_path / "old.db")
    with con:
        con.execute("CREATE TABLE decisions (key TEXT PRIMARY KEY, model TEXT NOT NULL, model_version TEXT, action TEXT NOT NULL, "
                    "strategy TEXT, recorded_at TEXT NOT NULL, decision TEXT NOT NULL)")
        con.execute("INSERT INTO decisions VALUES (?, 'churn', '1', 'retrain', 'full', 'then', '{}')", (d.idempotency_key,))
    con.close()
    ledger = DecisionLedger(tmp_path / "old.db")
    assert ledger.state(d.idempotency_key) == "done" and ledger.claim(d) is False


def test_an_unreachable_ledger_url_names_the_setting() -> None:
    from components.errors import ServiceUnavailable

    with pytest.raises(ServiceUnavailable, match="DRIFTLOOP_LEDGER_URL"):
        DecisionLedger("postgresql://nobody@127.0.0.1:1/none")

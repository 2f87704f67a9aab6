"""Issue 12, defect 5: a retrain branch that fails gives its ledger claim back (the exit
handler of monitor_and_retrain), run with kfp.local as the real pipeline nests it."""

# No "from __future__ import annotations": KFP reads the components' real annotation types.
from pathlib import Path

import pytest
from kfp import dsl

from components.decision import DecisionLedger, decide
from components.kfp import component
from components.kfp.monitor import settle_decision
from components.policy import load_policy

pytestmark = pytest.mark.e2e


@component
def train_or_fail(fail: bool) -> str:
    """A stand-in training step."""
    if fail:
        raise RuntimeError("training failed")
    return "trained"


@component
def mark_done(decision_key: str, workdir: str) -> bool:
    """What the register step does after a successful retrain."""
    from components.decision import open_ledger
    from components.kfp import runtime

    return open_ledger(runtime.settings_for(workdir)).mark_done(decision_key)


@dsl.pipeline(name="retrain-branch")
def retrain_branch(decision_key: str, workdir: str, action: str, fail: bool) -> None:
    settle = settle_decision(decision_key=decision_key, workdir=workdir)
    with dsl.ExitHandler(settle, name="retrain-or-release"), dsl.If(action == "retrain", name="retrain"):
        trained = train_or_fail(fail=fail)
        mark_done(decision_key=decision_key, workdir=workdir).after(trained)


@dsl.pipeline(name="loop")
def loop(decision_key: str, workdir: str, action: str, fail: bool) -> None:
    retrain_branch(decision_key=decision_key, workdir=workdir, action=action, fail=fail)


def _run(tmp_path: Path, key: str, fail: bool) -> None:
    from pipelines.local import init_local, quiet_local_warnings

    init_local(tmp_path / "kfp")
    try:
        with quiet_local_warnings():
            loop(decision_key=key, workdir=str(tmp_path / "work"), action="retrain", fail=fail)
    except RuntimeError:
        assert fail, "only the failing run may fail"


def test_a_failed_retrain_releases_its_claim_and_a_good_one_stays_done(tmp_path: Path) -> None:
    ledger = DecisionLedger(tmp_path / "work" / "decisions.db")
    d = decide(load_policy("churn"), [{"name": "accuracy_floor", "type": "performance", "fired": True, "summary": "x"}], "1", {"end": "2025-10-01"})
    assert ledger.claim(d)  # as the decide step leaves it
    _run(tmp_path, d.idempotency_key, fail=True)
    assert ledger.state(d.idempotency_key) == "released", "the failed retrain gave the window back"
    assert ledger.claim(d), "so the next run of the window retrains"
    _run(tmp_path, d.idempotency_key, fail=False)
    assert ledger.state(d.idempotency_key) == "done" and not ledger.claim(d)


def test_monitor_and_retrain_settles_its_retrain_branch_in_an_exit_handler(tmp_path: Path) -> None:
    import yaml

    from pipelines.compile import compile_pipeline

    spec = next(yaml.safe_load_all(compile_pipeline("monitor_and_retrain", tmp_path / "p.yaml", "cluster").read_text()))
    branch = spec["components"]["comp-retrain-if-decided"]["dag"]["tasks"]
    settle = next(t for name, t in branch.items() if name.startswith("settle-decision"))
    assert settle["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"  # runs when the branch failed too
    assert not settle.get("cachingOptions", {}).get("enableCache")  # a second failed run must release its claim too, not hit the cache
    assert any(name.startswith("exit-handler") for name in branch)

"""Cohort specialists: trained on one cohort's recent rows, gated on that cohort, own aliases, retired when caught up.

Synthetic credit-like data (tests/components/training/training_synth.py) whose subprime
cohort changes taste at ONSET (its label starts to follow x3, noise before); the global
champion is trained before the change. Real MLflow registry (embedded SQLite store).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.errors import ConfigError
from components.registry import CHALLENGER, CHAMPION, ModelRegistry
from components.registry.aliases import alias_for
from components.registry.reconcile import reconcile
from components.settings import Settings
from components.training.datasets import build_training_set, specialist_cohort, training_cohorts
from components.training.workflow import gate, retrain, review_specialists
from driftloop.demo.cohort import retrain_lineage
from tests.components.training.training_synth import START, make_frame, make_policy

pytestmark = pytest.mark.integration

ONSET = START + pd.Timedelta(days=70)
END = START + pd.Timedelta(days=100) - pd.Timedelta(hours=3)  # labels of the last rows are known
SPECIALIST = [{"when": ["gini"], "strategy": "recent_window", "window": "30d"},
              {"when": ["gini"], "strategy": "cohort", "window": "30d"}]


def drifted(everyone: bool = False) -> pd.DataFrame:
    """100 days of hourly rows; from ONSET the subprime label (every cohort's with ``everyone``) follows x3."""
    frame = make_frame(rows=2400, seed=3)
    rng = np.random.default_rng(7)
    changed = (frame["event_timestamp"] >= ONSET) & ((frame["segment"] == "subprime") | everyone)
    p = 1 / (1 + np.exp(-(2.5 * frame["x3"] - 0.3)))
    frame.loc[changed, "defaulted"] = (rng.random(len(frame)) < p)[changed].astype(int)
    return frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return drifted()


def test_cohort_strategy_trains_on_that_cohorts_recent_rows_only(frame: pd.DataFrame) -> None:
    policy = make_policy(actions=SPECIALIST)
    data = build_training_set(policy, "cohort", END, cohort="subprime", source=frame)
    rows = pd.concat([data.train, data.holdout])
    assert set(rows["segment"]) == {"subprime"} and data.weights is None
    assert rows["event_timestamp"].min() > END - pd.Timedelta(days=30)  # the action's window, not all history
    assert specialist_cohort(data) == "subprime" and training_cohorts(policy, data) == ["subprime"]
    weighted = build_training_set(policy, "cohort", END, cohort="subprime", source=frame, upweight=3)  # the option
    assert specialist_cohort(weighted) is None and training_cohorts(policy, weighted) == ["prime", "subprime"]
    assert set(weighted.weights) == {1.0, 3.0}


def test_specialist_gets_its_own_aliases_gated_on_its_cohort_and_leaves_the_global_champion(tmp_path, frame: pd.DataFrame) -> None:
    policy = make_policy(model="cohorts", actions=SPECIALIST)
    registry = ModelRegistry(Settings(workdir=tmp_path))
    base = retrain(policy, "full", ONSET, source=frame, registry=registry, decision_id="base")
    assert base.alias == CHAMPION

    spec = retrain(policy, "cohort", END, cohort="subprime", source=frame, registry=registry, decision_id="d-sub", actor="test")
    assert spec.alias == "challenger-subprime" and spec.verdict.passed, spec.verdict.reasons
    assert spec.version.tags["driftloop.cohort"] == "subprime" and spec.version.tags["driftloop.specialist"] == "true"
    assert spec.version.params["cohort"] == "subprime" and spec.version.tags["driftloop.training_cohorts"] == '["subprime"]'
    assert base.version.tags["driftloop.training_cohorts"] == '["prime", "subprime"]' and "driftloop.cohort" not in base.version.tags
    assert retrain_lineage(registry, "cohorts", "d-sub") == {  # what the demo's summary reports for the retrain event
        "version": str(spec.version.version), "training_rows": len(spec.training.train), "holdout_rows": len(spec.training.holdout),
        "training_cohorts": ["subprime"], "cohort": "subprime", "gate_passed": True,
        "training_window": {"start": spec.training.window_start.isoformat(), "end": spec.training.window_end.isoformat()}}
    holdout_rows = len(spec.training.holdout)
    assert spec.verdict.challenger["overall"]["n"] == spec.verdict.champion["overall"]["n"] == holdout_rows
    assert {k for k, v in spec.verdict.challenger["segments"].items() if v["n"]} == {"subprime"}  # compared on the cohort's holdout only
    gain = spec.verdict.challenger["overall"]["auc"] - spec.verdict.champion["overall"]["auc"]
    assert gain > 0.15, spec.verdict.reasons  # the pre-change global model cannot know x3 matters now
    assert registry.get("cohorts", CHAMPION).version == base.version.version and registry.get("cohorts", CHALLENGER) is None

    registry.promote("cohorts", spec.version.version, actor="canary", reason="cohort canary passed", cohort="subprime")
    assert registry.cohort_routes("cohorts") == {"subprime": spec.version.version}
    assert registry.get("cohorts", CHAMPION).version == base.version.version  # the global champion is untouched
    assert registry.serving("cohorts", "subprime").version == spec.version.version
    assert registry.serving("cohorts", "prime").version == base.version.version
    moves = [(e["event"], e["alias"], e["version"], e.get("cohort")) for e in registry.history("cohorts")]
    assert moves[-2:] == [("set_challenger", "challenger-subprime", spec.version.version, "subprime"),
                          ("promote", "champion-subprime", spec.version.version, "subprime")]

    # the next specialist is gated against the cohort's specialist, not the global champion
    again = gate(policy, registry.load("cohorts", base.version.version), spec.training.holdout, registry, cohort="subprime")
    assert again.champion["overall"]["auc"] == pytest.approx(spec.verdict.challenger["overall"]["auc"])

    view = registry.for_cohort("subprime")  # what a cohort canary drives: the cohort's pair only
    assert view.resolve("cohorts", "champion").version == spec.version.version
    view.set_challenger("cohorts", base.version.version, reason="test")
    assert view.resolve("cohorts", "models:/cohorts@challenger").version == base.version.version
    assert view.rollback("cohorts", reason="cohort canary rolled back", version=base.version.version).version == spec.version.version
    assert registry.get("cohorts", "challenger-subprime") is None
    assert registry.get("cohorts", CHAMPION).version == base.version.version and registry.get("cohorts", CHALLENGER) is None

    # a cohort promotion that crashed after its intent entry is completed on the cohort's aliases only
    registry._audit("cohorts", "intent", "champion-subprime", base.version.version, spec.version.version, "test", "promote: crashed", "subprime")
    assert reconcile(registry, "cohorts")[0].startswith("completed promote")
    assert registry.get("cohorts", "champion-subprime").version == base.version.version
    assert registry.history("cohorts")[-1]["cohort"] == "subprime" and registry.get("cohorts", CHAMPION).version == base.version.version


def test_a_specialist_the_global_champion_caught_up_with_is_retired_with_the_reason(tmp_path, frame: pd.DataFrame) -> None:
    policy = make_policy(model="retire", actions=SPECIALIST)
    registry = ModelRegistry(Settings(workdir=tmp_path))
    retrain(policy, "full", ONSET, source=frame, registry=registry, decision_id="base")
    spec = retrain(policy, "cohort", END, cohort="subprime", source=frame, registry=registry, decision_id="d-sub")
    registry.promote("retire", spec.version.version, reason="cohort canary passed", cohort="subprime")

    stale = review_specialists(policy, spec.training.holdout, registry)  # the old global champion: still worse
    assert [(r["cohort"], r["retired"]) for r in stale] == [("subprime", False)]
    assert registry.cohort_routes("retire") == {"subprime": spec.version.version}

    everyone = drifted(everyone=True)  # the change reached every cohort; a global retrain on fresh data learns it
    fresh = retrain(policy, "recent_window", END, source=everyone, registry=registry, decision_id="fresh")
    registry.promote("retire", fresh.version.version, reason="global canary passed")
    sub_holdout = fresh.training.holdout[fresh.training.holdout["segment"] == "subprime"]
    review = review_specialists(policy, fresh.training.holdout, registry, actor="test")
    assert [(r["cohort"], r["retired"], r["rows"]) for r in review] == [("subprime", True, len(sub_holdout))]
    assert registry.cohort_routes("retire") == {} and registry.get("retire", alias_for(CHAMPION, "subprime")) is None
    assert registry.serving("retire", "subprime").version == fresh.version.version  # the route falls back to the global champion
    last = registry.history("retire")[-1]
    assert (last["event"], last["alias"], last["previous"], last["actor"]) == ("retire", "champion-subprime", spec.version.version, "test")
    assert "no longer worse" in last["reason"] and "auc" in last["reason"]
    assert registry.versions("retire")[-1].version < spec.version.version  # nothing deleted: the retired version stays auditable
    assert "driftloop.retired" in registry.resolve("retire", spec.version.version).tags


def test_a_cohort_that_cannot_name_an_alias_is_refused_in_one_line(tmp_path) -> None:
    registry = ModelRegistry(Settings(workdir=tmp_path))
    with pytest.raises(ConfigError, match="cannot name an MLflow alias"):
        registry.for_cohort("new users")

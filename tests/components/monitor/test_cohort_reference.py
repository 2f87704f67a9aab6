"""A cohort served by its specialist is monitored against the specialist's own reference, not the global one.

recsys data: the casual cohort's click-through drops from ``onset2`` (2025-06-10) for good.
The global champion is trained before the drop; the casual specialist on casual rows after
it. Monitoring the weeks after the drop against the global reference keeps firing
``cohort_ctr`` on casual (the drop is real); against the specialist's reference it is quiet,
while the other cohorts keep the global reference. Real MLflow registry (embedded SQLite).
"""

from __future__ import annotations

import pandas as pd
import pytest

from components.data.scenarios import generate, get_spec
from components.policy import load_policy
from components.registry import ModelRegistry
from components.scoring import monitor_report, specialist_references
from components.settings import Settings
from components.training.workflow import retrain

pytestmark = pytest.mark.integration

ONSET = get_spec("recsys").onset2


def _cohort_ctr(report) -> dict[str, dict]:
    entry = next(m for m in report.monitors if m["name"] == "cohort_ctr")
    return {r["segment"]: r for r in entry["results"]}


def test_a_specialists_cohort_is_monitored_against_its_own_reference(tmp_path) -> None:
    policy = load_policy("recsys")
    frame = generate("recsys", rows=30_000, seed=0)
    ts = pd.to_datetime(frame[policy.timestamp], utc=True)
    settings = Settings(workdir=tmp_path)
    registry = ModelRegistry(settings)
    retrain(policy, "full", ONSET, source=frame, registry=registry, decision_id="base")
    spec = retrain(policy, "cohort", ONSET + pd.Timedelta(days=8), cohort="casual", source=frame, registry=registry, decision_id="casual")
    assert spec.alias == "challenger-casual"
    registry.promote(policy.model, spec.version.version, reason="cohort canary passed", cohort="casual")

    current = frame[ts >= ONSET + pd.Timedelta(days=9)]  # after the specialist's window: fresh casual traffic
    own = specialist_references(policy, settings)
    assert list(own) == ["casual"] and set(own["casual"]["user_cohort"]) == {"casual"}

    with_global = _cohort_ctr(monitor_report(policy, None, current, settings=settings, cohort_references={}))
    assert with_global["casual"]["drift"] and with_global["casual"]["details"]["reference"] == "global"  # the real drop

    with_own = _cohort_ctr(monitor_report(policy, None, current, settings=settings))  # the default: the specialist's reference
    assert not with_own["casual"]["drift"] and with_own["casual"]["details"]["reference"] == "cohort"
    assert {c: (r["drift"], r["details"]["reference"]) for c, r in with_own.items() if c != "casual"} == {
        "new": (False, "global"), "power": (False, "global")}  # no specialist: the global reference of that cohort

"""The feature-view check on churn batches: an upstream bug is caught, clean batches pass over many seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.data.scenarios import generate
from components.features.view_checks import CHECKS_FILE, load_view_checks
from components.features.views_monitor import ViewProfile, ViewReport, check_batch
from components.settings import FEATURE_REPO_DIR

pytestmark = pytest.mark.unit

NUMERIC = ["tenure_months", "support_calls", "num_products", "monthly_charges", "total_charges"]
CATEGORICAL = ["contract", "region"]
# as feature_repo/feature_checks.yaml declares churn_features
CHECK = load_view_checks(FEATURE_REPO_DIR / CHECKS_FILE)["churn_features"]
BATCH = ("2025-01-01", "2025-02-01")  # a month before the scenario's drift onset (2025-07)


def _window(frame: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    t = frame["event_timestamp"]
    return frame[(t >= pd.Timestamp(start, tz="UTC")) & (t < pd.Timestamp(end, tz="UTC"))].reset_index(drop=True)


def _check(seed: int, corrupt: bool = False) -> ViewReport:
    data = generate("churn", rows=24 * 150, seed=seed)
    ref = _window(data, CHECK.reference.start, CHECK.reference.end)
    profile = ViewProfile.fit(ref, NUMERIC, CATEGORICAL, CHECK, CHECK.reference.start, CHECK.reference.end)
    batch = _window(data, *BATCH)
    if corrupt:  # the upstream bug: a join drops support_calls, a job starts writing cents
        batch["support_calls"] = np.nan
        batch["monthly_charges"] = batch["monthly_charges"] * 100
    return check_batch(batch, profile, CHECK, *BATCH, view="churn_features")


def test_upstream_bug_is_caught_with_the_features_named() -> None:
    report = _check(seed=3, corrupt=True)
    assert not report.passed
    failed = {(q.check, q.feature) for q in report.failed_quality}
    assert ("null_share", "support_calls") in failed
    assert ("range", "monthly_charges") in failed
    assert "monthly_charges" in report.drifted_features
    assert {"monthly_charges", "support_calls"} <= set(report.affected_features)
    assert "support_calls" not in [r.feature for r in report.drift]  # all-null: a quality failure, not a test
    # the Bonferroni budget still counts all 5 drift-tested features although one could not be tested
    assert [r.threshold for r in report.drift] == pytest.approx([0.05 / 5] * 4)


def test_clean_batches_pass_over_many_seeds() -> None:
    reports = [_check(seed) for seed in range(40)]
    # quality limits never fire on clean data; drift fires within its 5% false-alarm budget
    assert all(r.passed for r in reports), [r.lines() for r in reports if not r.passed]
    alarms = sum(bool(r.drifted_features) for r in reports)
    assert alarms <= 5, alarms  # Binomial(40, 0.05): P(> 5) < 0.05


@pytest.mark.parametrize(
    ("change", "check", "feature"),
    [
        (lambda b: b.assign(contract=b["contract"].replace({"two_year": "2yr"})), "new_categories", "contract"),
        (lambda b: b.assign(contract=b["contract"].replace({"two_year": "one_year"})), "vanished_categories", "contract"),
        (lambda b: b.iloc[: len(b) // 4], "volume", None),
        (lambda b: b.assign(region=None), "null_share", "region"),
    ],
)
def test_each_quality_check_fires_on_its_fault(change, check: str, feature: str | None) -> None:
    data = generate("churn", rows=24 * 150, seed=1)
    ref = _window(data, CHECK.reference.start, CHECK.reference.end)
    profile = ViewProfile.fit(ref, NUMERIC, CATEGORICAL, CHECK, CHECK.reference.start, CHECK.reference.end)
    report = check_batch(change(_window(data, *BATCH)), profile, CHECK, *BATCH)
    assert (check, feature) in {(q.check, q.feature) for q in report.failed_quality}


def test_stale_batch_fails_freshness() -> None:
    data = generate("churn", rows=24 * 150, seed=1)
    ref = _window(data, CHECK.reference.start, CHECK.reference.end)
    profile = ViewProfile.fit(ref, NUMERIC, CATEGORICAL, CHECK, CHECK.reference.start, CHECK.reference.end)
    # the January snapshot checked as if the window ran to mid-February: newest event 45 days old
    report = check_batch(_window(data, *BATCH), profile, CHECK, "2025-01-01", "2025-02-15")
    fresh = next(q for q in report.quality if q.check == "freshness")
    assert not fresh.passed and fresh.value == pytest.approx(45 * 24)


def test_exported_names_are_the_metrics_set() -> None:
    """The alert rules are checked against view_metrics.EXPORTED: it must list exactly what is set."""
    from prometheus_client import CollectorRegistry

    from components.features.view_metrics import EXPORTED, export_view_metrics
    from components.features.views_monitor import QualityResult, ViewReport

    report = ViewReport("v", {"start": "a", "end": "b"}, 10, [], [QualityResult("freshness", None, 1.0, "<= 48", True)], "pass", models=[])
    registry = export_view_metrics(report, CollectorRegistry())
    assert {m.name for m in registry.collect()} == set(EXPORTED)

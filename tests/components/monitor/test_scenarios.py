"""Each seed scenario through the real policy: quiet before the onset, the right decision after it.

A quick model (scikit-learn logistic regression, seeded) is trained inside each test on
data before the onset and its P(label = 1) is written to the policy's prediction column.
The reference window follows the training window (held-out, as the registry's reference
sample would be); "before" is a later pre-onset window, "after" starts at the onset.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from components.data.scenarios import SCENARIOS, generate
from components.monitor.engine import run_monitors
from components.monitor.html import write_html
from components.monitor.results import MonitorReport
from components.policy import Policy, load_policy

pytestmark = pytest.mark.integration


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def with_predictions(policy: Policy, df: pd.DataFrame, train_end: pd.Timestamp) -> pd.DataFrame:
    """Fit a logistic regression on rows before ``train_end``; add P(label = 1) for every row."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model = make_pipeline(
        make_column_transformer((StandardScaler(), policy.features), (OneHotEncoder(handle_unknown="ignore"), policy.categorical_features)),
        LogisticRegression(max_iter=1000, random_state=0),
    )
    train = df[df[policy.timestamp] < train_end]
    model.fit(train[policy.all_features], train[policy.label])
    return df.assign(**{policy.prediction: model.predict_proba(df[policy.all_features])[:, 1]})


def between(policy: Policy, df: pd.DataFrame, start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DataFrame:
    ts = df[policy.timestamp]
    return df[(ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))]


class Scenario:
    """One scenario's data with predictions and its reference window."""

    def __init__(self, name: str, rows: int, train_end: str, ref_end: str) -> None:
        self.policy = load_policy(name)
        self.spec = SCENARIOS[name]
        self.df = with_predictions(self.policy, generate(name, rows=rows, seed=0), utc(train_end))
        self.ref = between(self.policy, self.df, utc(train_end), utc(ref_end))

    def run(self, start: str, end: str, **kw: object) -> MonitorReport:
        return run_monitors(self.policy, self.ref, between(self.policy, self.df, utc(start), utc(end)), model_version="1", **kw)


def keep(report: MonitorReport, artifacts_dir: Path, name: str) -> None:
    """Leave the report where a person can open it (test-artifacts/monitor-<name>/)."""
    out = artifacts_dir / f"monitor-{name}"
    out.mkdir(exist_ok=True)
    (out / "report.json").write_text(report.to_json())
    write_html(report, out / "report.html")


def retrain_monitors(report: MonitorReport, policy: Policy) -> set[str]:
    """Fired monitors that a retrain action names (alerts are allowed before the onset)."""
    retrain = {n for a in policy.actions if a.action == "retrain" for n in a.when}
    return set(report.fired_monitors()) & retrain


# --- churn: accuracy floor -> retrain on all history -----------------------------------


@pytest.fixture(scope="module")
def churn() -> Scenario:
    return Scenario("churn", rows=24_000, train_end="2025-01-01", ref_end="2025-05-01")


def test_churn_before_onset_does_not_retrain(churn: Scenario) -> None:
    report = churn.run("2025-05-01", "2025-07-01")
    assert retrain_monitors(report, churn.policy) == set()
    assert report.decision["action"] != "retrain"
    acc = report.monitor("accuracy_floor")["results"][0]
    assert acc["statistic"] > 0.88


def test_churn_after_onset_retrains_on_the_accuracy_floor(churn: Scenario, artifacts_dir: Path) -> None:
    report = churn.run("2025-07-01", "2025-09-01")
    keep(report, artifacts_dir, "churn")
    d = report.decision
    (action,) = [a for a in churn.policy.actions if "accuracy_floor" in a.when]  # the policy says how to retrain
    assert (d["action"], d["strategy"], d["window"]) == ("retrain", action.strategy, action.window)
    acc = report.monitor("accuracy_floor")
    assert acc["fired"] and acc["results"][0]["statistic"] < 0.85
    assert any(r.startswith("accuracy_floor: accuracy 0.7") and "< 0.85 (n=2000, 95% CI" in r for r in d["reasons"])
    # the price change hits month-to-month contracts: slicing names them first
    assert acc["slices"][0]["column"] == "contract" and acc["slices"][0]["slice"] == "month-to-month"
    assert {r["feature"] for r in report.monitor("feature_drift")["results"] if r["drift"]} >= {"monthly_charges"}


# --- credit: subprime Gini relative drop -> recent window; prime stays ------------------


@pytest.fixture(scope="module")
def credit() -> Scenario:
    return Scenario("credit", rows=60_000, train_end="2025-01-01", ref_end="2025-04-01")


def test_credit_before_onset_is_quiet(credit: Scenario) -> None:
    report = credit.run("2025-04-01", "2025-07-01")
    assert report.fired_monitors() == []
    assert report.decision["action"] == "none"


def test_credit_after_onset_subprime_gini_retrains_and_prime_does_not_fire(credit: Scenario, artifacts_dir: Path) -> None:
    report = credit.run("2025-07-01", "2025-10-01")
    keep(report, artifacts_dir, "credit")
    sub, prime = report.monitor("subprime_gini"), report.monitor("prime_gini")
    assert sub["fired"] and not prime["fired"]
    (r,) = sub["results"]
    assert r["segment"] == "subprime" and r["details"]["relative_drop"] > 0.05
    assert (prime["results"][0]["details"]["relative_drop"] or 0) < 0.05
    d = report.decision
    assert (d["action"], d["strategy"], d["window"]) == ("retrain", "recent_window", "12M")
    assert d["triggered_by"] == ["subprime_gini"]
    assert sub["slices"] and sub["slices"][0]["column"] == "employment"


# --- fraud: error stream -> emergency retrain within hours ------------------------------


@pytest.fixture(scope="module")
def fraud() -> Scenario:
    return Scenario("fraud", rows=40_000, train_end="2025-03-07", ref_end="2025-03-09")


def test_fraud_error_stream_is_quiet_before_onset(fraud: Scenario) -> None:
    report = fraud.run("2025-03-09", "2025-03-10")
    assert retrain_monitors(report, fraud.policy) == set()
    assert report.monitor("error_stream")["results"][0]["status"] == "ok"


def test_fraud_emergency_retrain_within_hours_of_onset(fraud: Scenario, artifacts_dir: Path) -> None:
    onset = fraud.spec.onset
    as_of = onset + pd.Timedelta(hours=18)
    window = between(fraud.policy, fraud.df, onset - pd.Timedelta(hours=12), as_of)
    # labels arrive hours after the transaction: unknown ones are NaN at monitoring time
    window = window.assign(**{fraud.policy.label: window[fraud.policy.label].where(window["label_timestamp"] <= as_of)})
    assert window[fraud.policy.label].isna().any()
    report = run_monitors(fraud.policy, fraud.ref, window, model_version="1")
    keep(report, artifacts_dir, "fraud")
    d = report.decision
    assert (d["action"], d["strategy"], d["window"], d["min_rows"]) == ("retrain", "emergency", "48h", 2000)
    (r,) = report.monitor("error_stream")["results"]
    assert r["drift"]
    ordered = window.sort_values(fraud.policy.timestamp, kind="mergesort").reset_index(drop=True)
    detected = ordered[fraud.policy.timestamp].iloc[r["detected_at"]]
    assert pd.Timestamp(r["details"]["detected_timestamp"]) == detected
    assert onset <= detected <= onset + pd.Timedelta(hours=12), f"detected at {detected}, onset {onset}"


# --- recsys: category PSI -> recent window; casual cohort SPRT -> cohort ----------------


@pytest.fixture(scope="module")
def recsys() -> Scenario:
    return Scenario("recsys", rows=60_000, train_end="2025-05-14", ref_end="2025-05-24")


def test_recsys_before_onset_is_quiet(recsys: Scenario) -> None:
    report = recsys.run("2025-05-24", "2025-05-31")
    assert report.fired_monitors() == [] and report.decision["action"] == "none"


def test_recsys_category_shift_retrains_on_the_recent_window(recsys: Scenario) -> None:
    report = recsys.run("2025-05-31", "2025-06-10")
    psi = report.monitor("category_psi")
    assert psi["fired"]
    (p,) = [r for r in psi["results"] if r["test"] == "psi"]
    assert p["feature"] == "item_category" and p["statistic"] > 0.25
    assert not report.monitor("cohort_ctr")["fired"], "no cohort's CTR has dropped yet"
    d = report.decision
    assert (d["action"], d["strategy"], d["window"], d["cohort"]) == ("retrain", "recent_window", "14d", None)


def test_recsys_casual_cohort_drop_retrains_that_cohort(recsys: Scenario, artifacts_dir: Path) -> None:
    report = recsys.run("2025-06-10", "2025-06-20")
    keep(report, artifacts_dir, "recsys")
    sprt = report.monitor("cohort_ctr")
    fired = {r["segment"] for r in sprt["results"] if r["drift"]}
    assert fired == {"casual"}
    d = report.decision
    assert (d["action"], d["strategy"], d["cohort"], d["window"], d["upweight"]) == ("retrain", "cohort", "casual", "5d", None)  # a specialist
    assert any("cohort casual" in r for r in d["reasons"])


# --- concept: quiet inputs, failing slice ------------------------------------------------


@pytest.fixture(scope="module")
def concept() -> Scenario:
    return Scenario("concept", rows=30_000, train_end="2025-04-08", ref_end="2025-04-12")


def test_concept_before_onset_is_quiet(concept: Scenario) -> None:
    report = concept.run("2025-04-12", "2025-04-16")
    assert report.fired_monitors() == []


@pytest.fixture(scope="module")
def concept_after(concept: Scenario) -> MonitorReport:
    return concept.run("2025-04-16", "2025-04-22")


def test_concept_inputs_stay_quiet_after_onset(concept_after: MonitorReport) -> None:
    assert not concept_after.monitor("feature_drift")["fired"], concept_after.monitor("feature_drift")["summary"]


def test_concept_drift_with_quiet_labels_finds_the_west_evening_slice(concept_after: MonitorReport, artifacts_dir: Path) -> None:
    report = concept_after
    keep(report, artifacts_dir, "concept")
    assert not report.monitor("label_drift")["fired"]
    assert report.monitor("accuracy_drop")["fired"] and report.monitor("error_stream")["fired"]
    d = report.decision
    assert (d["action"], d["strategy"], d["window"]) == ("retrain", "recent_window", "7d")
    for name in ("accuracy_drop", "error_stream"):
        slices = report.monitor(name)["slices"]
        top = {s["column"]: s["slice"] for s in slices[::-1]}  # first-ranked slice per column wins
        assert (slices[0]["column"], slices[0]["slice"]) in {("region", "west"), ("daypart", "evening")}
        assert top == {"region": "west", "daypart": "evening"}

"""Each scenario's documented drift moves at its documented onset, and not before.

Models are fit on seeded data from before the onset and scored period by period: the
statistic stays put on pre-onset periods (no false alarm) and moves after the onset.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, ks_2samp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from components.data.scenarios import SCENARIOS, generate

pytestmark = pytest.mark.unit


def _hgb(df: pd.DataFrame, name: str, train: pd.Series) -> np.ndarray:
    """Fit a gradient-boosted model on the ``train`` rows; return predicted labels for all rows."""
    spec = SCENARIOS[name]
    X = df[list(spec.features)].copy()
    for col in spec.categorical_features:
        X[col] = df[col].astype("category")
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0, max_iter=100)
    model.fit(X[train], df.loc[train, spec.label])
    return model.predict(X)


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_churn_accuracy_holds_before_onset_and_falls_below_085_after() -> None:
    spec = SCENARIOS["churn"]
    df = generate("churn", rows=24 * 1500, seed=11)
    df["pred"] = _hgb(df, "churn", df.event_timestamp < _ts("2025-01-01"))
    acc = (df.pred == df.churned).groupby(df.event_timestamp).mean()
    before = acc[(acc.index >= _ts("2025-01-01")) & (acc.index < spec.onset)]
    after = acc[acc.index >= spec.onset]
    assert len(before) == 6 and len(after) == 6
    assert before.min() > 0.87 and before.max() < 0.95  # comfortably above the 0.85 floor
    assert after.max() < 0.85
    rate = df.groupby("event_timestamp").churned.mean()
    assert rate[rate.index < spec.onset].between(0.06, 0.12).all() and rate[rate.index >= spec.onset].min() > 0.18
    # the price change is a feature drift too
    assert df.loc[df.event_timestamp >= spec.onset, "monthly_charges"].mean() > 1.12 * df.loc[df.event_timestamp < spec.onset, "monthly_charges"].mean()


def _credit_gini(df: pd.DataFrame, train: pd.Series, windows: list[tuple[str, str]]) -> dict[tuple[str, str], list[float]]:
    spec = SCENARIOS["credit"]
    X = df[list(spec.features)].copy()
    X[["income", "loan_amount"]] = np.log(X[["income", "loan_amount"]])
    X = pd.concat([X, pd.get_dummies(df[["employment", "segment"]], dtype=float)], axis=1)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X[train], df.loc[train, "defaulted"])
    score = model.predict_proba(X)[:, 1]
    out: dict[tuple[str, str], list[float]] = {}
    for seg in ("prime", "subprime"):
        for a, b in windows:
            m = (df.segment == seg) & (df.event_timestamp >= _ts(a)) & (df.event_timestamp < _ts(b))
            out.setdefault((seg, a), []).append(2 * roc_auc_score(df.defaulted[m], score[m]) - 1)
    return {k: v for k, v in out.items()}


def test_credit_subprime_gini_drops_after_onset_prime_holds() -> None:
    df = generate("credit", rows=120_000, seed=11)
    g = _credit_gini(df, df.event_timestamp < _ts("2025-01-01"), [("2025-01-01", "2025-07-01"), ("2025-07-01", "2026-01-01")])
    sub_drop = 1 - g[("subprime", "2025-07-01")][0] / g[("subprime", "2025-01-01")][0]
    prime_change = abs(1 - g[("prime", "2025-07-01")][0] / g[("prime", "2025-01-01")][0])
    assert 0.12 < sub_drop < 0.35, sub_drop
    assert prime_change < 0.04, prime_change


def test_credit_no_gini_drop_between_pre_onset_windows() -> None:
    df = generate("credit", rows=120_000, seed=12)
    g = _credit_gini(df, df.event_timestamp < _ts("2024-07-01"), [("2024-07-01", "2025-01-01"), ("2025-01-01", "2025-07-01")])
    for seg in ("prime", "subprime"):
        assert abs(1 - g[(seg, "2025-01-01")][0] / g[(seg, "2024-07-01")][0]) < 0.05, seg


def test_fraud_error_rate_jumps_at_onset_hour() -> None:
    spec = SCENARIOS["fraud"]
    df = generate("fraud", rows=60_000, seed=11)
    df["pred"] = _hgb(df, "fraud", df.event_timestamp < _ts("2025-03-06"))
    day = df.event_timestamp.dt.floor("D")
    err = (df.pred != df.is_fraud).groupby(day).mean()
    recall = df.pred[df.is_fraud == 1].groupby(day[df.is_fraud == 1]).mean()
    pre = (err.index >= _ts("2025-03-06")) & (err.index < spec.onset)
    assert err[pre].max() < 0.018 and err[~pre & (err.index >= spec.onset)].min() > 0.02
    assert recall[pre].min() > 0.5 and recall[recall.index >= spec.onset].max() < 0.15
    # the 12 hours before vs after the onset hour already differ clearly
    hour = df.event_timestamp
    before = df[(hour >= spec.onset - pd.Timedelta(hours=12)) & (hour < spec.onset)]
    after = df[(hour >= spec.onset) & (hour < spec.onset + pd.Timedelta(hours=12))]
    assert (after.pred != after.is_fraud).mean() > 2 * (before.pred != before.is_fraud).mean()


def _psi(ref: pd.Series, cur: pd.Series) -> float:
    p = ref.value_counts(normalize=True)
    q = cur.value_counts(normalize=True).reindex(p.index).fillna(1e-4).clip(lower=1e-4)
    return float(((q - p) * np.log(q / p)).sum())


def test_recsys_category_psi_and_casual_ctr_drop() -> None:
    spec = SCENARIOS["recsys"]
    assert spec.onset2 is not None
    df = generate("recsys", rows=120_000, seed=11)
    t = df.event_timestamp
    first, second = df[t < _ts("2025-05-16")], df[(t >= _ts("2025-05-16")) & (t < spec.onset)]
    after1 = df[(t >= spec.onset) & (t < spec.onset2)]
    assert _psi(first.item_category, second.item_category) < 0.02
    assert _psi(first.item_category, after1.item_category) > 0.5
    ctr_b = after1.groupby("user_cohort").clicked.mean()
    ctr_c = df[t >= spec.onset2].groupby("user_cohort").clicked.mean()
    ctr_a = df[t < spec.onset].groupby("user_cohort").clicked.mean()
    drop = 1 - ctr_c / ctr_b
    assert 0.25 < drop["casual"] < 0.5
    assert abs(drop["new"]) < 0.12 and abs(drop["power"]) < 0.08
    assert (abs(1 - ctr_b / ctr_a) < 0.12).all()  # no cohort CTR drop at onset 1


def test_concept_inputs_quiet_but_west_evening_accuracy_collapses() -> None:
    spec = SCENARIOS["concept"]
    df = generate("concept", rows=72_000, seed=11)
    post = df.event_timestamp >= spec.onset
    pre = ~post & (df.event_timestamp >= _ts("2025-04-08"))
    for col in spec.features:
        assert ks_2samp(df.loc[pre, col], df.loc[post, col]).pvalue > 0.01 / 4, col
    for col in spec.categorical_features:
        assert chi2_contingency(pd.crosstab(df[col], post)).pvalue > 0.01, col
    assert abs(df.converted[post].mean() - df.converted[pre].mean()) < 0.015
    df["ok"] = _hgb(df, "concept", df.event_timestamp < _ts("2025-04-08")) == df.converted
    west_eve = (df.region == "west") & (df.daypart == "evening")
    assert df.ok[pre & west_eve].mean() - df.ok[post & west_eve].mean() > 0.3
    assert abs(df.ok[pre & ~west_eve].mean() - df.ok[post & ~west_eve].mean()) < 0.02
    assert df.ok[pre].mean() - df.ok[post].mean() > 0.03

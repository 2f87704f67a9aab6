"""Scenario generators: schema matches each policy, determinism, timing columns, errors, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.data.scenarios import SCENARIOS, generate, get_spec, write_scenario
from components.errors import DataError
from components.policy import load_policy
from driftloop.cli import main

pytestmark = pytest.mark.unit

NAMES = sorted(SCENARIOS)


@pytest.mark.parametrize("name", NAMES)
def test_columns_match_the_policy(name: str) -> None:
    policy = load_policy(name)
    spec = SCENARIOS[name]
    df = generate(name, rows=2_400, seed=3)
    expected = {policy.entity, policy.timestamp, policy.label, *policy.features, *policy.categorical_features}
    if policy.segments:
        expected.add(policy.segments.column)
        assert set(df[policy.segments.column]) == set(policy.segments.values)
    assert set(df.columns) == expected | {"label_timestamp"}
    assert (spec.entity, spec.timestamp, spec.label) == (policy.entity, policy.timestamp, policy.label)
    for col in policy.features:
        assert pd.api.types.is_numeric_dtype(df[col]), col
    for col in policy.categorical_features:
        assert df[col].map(type).eq(str).all(), col
    assert set(df[policy.label].unique()) <= {0, 1}
    assert df.notna().all().all()


@pytest.mark.parametrize("name", NAMES)
def test_time_order_calendar_and_label_delay(name: str) -> None:
    spec = SCENARIOS[name]
    df = generate(name, rows=3_000, seed=1)
    ts, lt = df[spec.timestamp], df["label_timestamp"]
    assert ts.is_monotonic_increasing and str(ts.dt.tz) == "UTC"
    assert ts.min() >= spec.start and ts.max() < spec.end + spec.period_length()
    assert (ts < spec.onset).any() and (ts >= spec.onset).any()
    delay = lt - ts
    assert (delay > pd.Timedelta(0)).all()
    if spec.label_delay == "hours":
        assert delay.min() >= pd.Timedelta(hours=2) and delay.max() <= pd.Timedelta(hours=6)
    elif spec.label_delay == "minutes":
        assert delay.max() <= pd.Timedelta(minutes=30)
    else:
        assert (lt == ts.dt.to_period("M").dt.end_time.dt.ceil("D").dt.tz_localize(None).dt.tz_localize("UTC")).all()
    # entity + event time identifies a row (Feast point-in-time joins rely on it)
    assert not df.duplicated([spec.entity, spec.timestamp]).any()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_by_seed(name: str) -> None:
    a = generate(name, rows=1_200, seed=7)
    pd.testing.assert_frame_equal(a, generate(name, rows=1_200, seed=7))
    assert not a.equals(generate(name, rows=1_200, seed=8))


def test_churn_customers_recur_every_month() -> None:
    df = generate("churn", rows=24 * 50, seed=0)
    per_customer = df.groupby("customer_id")["event_timestamp"].nunique()
    assert len(per_customer) == 50 and (per_customer == 24).all()


def test_rates_are_realistic() -> None:
    assert 0.02 <= generate("fraud", rows=40_000, seed=0)["is_fraud"].mean() <= 0.03
    churn = generate("churn", rows=24_000, seed=0)
    assert 0.07 <= churn.loc[churn.event_timestamp < SCENARIOS["churn"].onset, "churned"].mean() <= 0.11
    credit = generate("credit", rows=20_000, seed=0)
    assert 0.65 <= (credit.segment == "prime").mean() <= 0.75


def test_unknown_name_and_bad_rows_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown scenario 'nope'.*churn"):
        get_spec("nope")
    with pytest.raises(DataError, match="rows must be a positive integer"):
        generate("churn", rows=0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot write"):
        write_scenario("churn", blocker / "sub", rows=100)


def test_write_scenario_roundtrips(tmp_path: Path) -> None:
    path = write_scenario("recsys", tmp_path / "out", rows=500, seed=2)
    pd.testing.assert_frame_equal(pd.read_parquet(path), generate("recsys", rows=500, seed=2))


def test_cli_writes_parquet_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "credit", "concept", "--out", str(tmp_path), "--rows", "480", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "credit.parquet: 480 rows" in out and "concept.parquet: 480 rows" in out
    assert len(pd.read_parquet(tmp_path / "credit.parquet")) == 480


def test_cli_unknown_scenario_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown scenario 'nope'" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_a_million_rows_keep_the_fraud_rate() -> None:
    # how fast is a benchmark's question, not a timed unit test's (the wall clock of a shared machine is not the code's)
    df = generate("fraud", rows=1_000_000, seed=0)
    assert len(df) == 1_000_000
    assert np.isclose(df["is_fraud"].mean(), 0.025, atol=0.003)


def test_cli_plot_writes_self_contained_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "recsys", "--out", str(tmp_path), "--rows", "3000", "--plot"]) == 0
    html = (tmp_path / "recsys.html").read_text()
    assert "recsys.html" in capsys.readouterr().out
    assert "<script src=\"https://cdn.plot.ly" not in html and "Plotly.newPlot" in html and len(html) > 1_000_000  # JS inlined
    assert "onset 2" in html and "clicked rate: casual" in html


def test_period_summary_shows_the_drift() -> None:
    from components.data.plot import period_summary

    spec = SCENARIOS["churn"]
    s = period_summary(generate("churn", rows=24 * 500, seed=0), spec)
    assert len(s) == 24 and (s["rows"] == 500).all()
    before, after = s[s.index < spec.onset.tz_localize(None)], s[s.index >= spec.onset.tz_localize(None)]
    assert after["churned rate"].min() > before["churned rate"].max()

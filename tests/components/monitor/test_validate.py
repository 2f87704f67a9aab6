"""Input validation: every unusable input is one DataError naming the column and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.errors import DataError
from components.monitor.validate import validate_inputs
from components.policy import load_policy

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def policy():
    return load_policy("credit")


def _frame(policy, n: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f: rng.normal(size=n) for f in policy.features})
    df["employment"] = rng.choice(["salaried", "self"], n)
    df["segment"] = rng.choice(["prime", "subprime"], n)
    df[policy.timestamp] = pd.date_range("2025-01-01", periods=n, freq="D", tz="UTC")
    df[policy.label] = rng.integers(0, 2, n)
    df[policy.prediction] = rng.random(n)
    return df


def test_valid_inputs_pass_without_warnings(policy) -> None:
    assert validate_inputs(policy, _frame(policy), _frame(policy, seed=1)) == []


def test_misspelt_column_suggests_the_closest_name(policy) -> None:
    cur = _frame(policy).rename(columns={"debt_to_income": "debt_to_incom"})
    with pytest.raises(DataError) as exc:
        validate_inputs(policy, _frame(policy), cur)
    assert "current data has no column 'debt_to_income' (policy.features)" in str(exc.value)
    assert "did you mean 'debt_to_incom'" in str(exc.value)


def test_missing_segment_column_names_the_policy_field(policy) -> None:
    with pytest.raises(DataError, match=r"reference data has no column 'segment' \(policy.segments.column\)"):
        validate_inputs(policy, _frame(policy).drop(columns="segment"), _frame(policy))


def test_numeric_feature_stored_as_text(policy) -> None:
    cur = _frame(policy)
    cur["income"] = cur["income"].astype(str)
    with pytest.raises(DataError, match=r"'income' is object, but policy.features needs numbers.*categorical_features"):
        validate_inputs(policy, _frame(policy), cur)


def test_all_nan_column(policy) -> None:
    cur = _frame(policy)
    cur["utilization"] = np.nan
    with pytest.raises(DataError, match=r"current data column 'utilization' is entirely missing"):
        validate_inputs(policy, _frame(policy), cur)


def test_empty_window(policy) -> None:
    with pytest.raises(DataError, match=r"current data window is empty \(0 rows\).*widen the window"):
        validate_inputs(policy, _frame(policy), _frame(policy).iloc[0:0])


def test_schema_mismatch_between_windows(policy) -> None:
    cur = _frame(policy)
    cur["employment"] = (cur["employment"] == "self").astype(int)
    with pytest.raises(DataError, match=r"'employment' is object in reference data but int64 in current data"):
        validate_inputs(policy, _frame(policy), cur)


def test_missing_label_is_a_warning_not_an_error(policy) -> None:
    warnings = validate_inputs(policy, _frame(policy), _frame(policy).drop(columns=policy.label))
    assert warnings == ["current data has no label column 'defaulted': label_drift and performance monitors report insufficient data"]


def test_prediction_must_be_a_probability(policy) -> None:
    cur = _frame(policy)
    cur[policy.prediction] = cur[policy.prediction] * 10
    with pytest.raises(DataError, match=r"'prediction' has values outside \[0, 1\]"):
        validate_inputs(policy, _frame(policy), cur)


def test_label_must_be_binary(policy) -> None:
    cur = _frame(policy)
    cur[policy.label] = np.where(cur[policy.label] == 1, "yes", "no")
    with pytest.raises(DataError, match=r"'defaulted' \(policy.label\) must be 0/1"):
        validate_inputs(policy, _frame(policy), cur)


def test_unparseable_timestamp(policy) -> None:
    cur = _frame(policy)
    cur[policy.timestamp] = "yesterday-ish"
    with pytest.raises(DataError, match=r"'event_timestamp' \(policy.timestamp\) is not a timestamp"):
        validate_inputs(policy, _frame(policy), cur)


def test_missing_predictions_say_how_to_get_them(policy) -> None:
    with pytest.raises(DataError, match=r"current data has no column 'prediction'.*score the data first: add the model's P\(defaulted = 1\)"):
        validate_inputs(policy, _frame(policy), _frame(policy).drop(columns="prediction"))

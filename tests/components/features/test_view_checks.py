"""feature_checks.yaml: the bundled file loads, and bad entries fail on load naming view, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.errors import ConfigError
from components.features.view_checks import load_view_checks, view_check, view_checks_from_dict

pytestmark = pytest.mark.unit

REF = {"start": "2024-01-01", "end": "2024-07-01"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"reference": REF, "drift": {"numeric_test": "chi2"}}, "churn_features.drift.numeric_test: drift test 'chi2' does not accept numeric"),
        ({"reference": REF, "drift": {"numeric_test": "psi"}}, "gives a distance, not a p-value"),
        ({"reference": REF, "quality": {"max_staleness": "soon"}}, "churn_features.quality.max_staleness: 'soon' is not a duration"),
        ({"reference": REF, "quality": {"max_null_share": 2}}, "churn_features.quality.max_null_share"),
        ({"reference": REF, "quality": {"volume": {"min_ratio": 3, "max_ratio": 2}}}, "volume.min_ratio 3.0 must be below"),
        ({"reference": {"start": "2024-07-01", "end": "2024-01-01"}}, "reference.start 2024-07-01 must be before"),
        ({"reference": REF, "on_fail": "explode"}, "churn_features.on_fail"),
        ({"reference": REF, "tresholds": {}}, "churn_features.tresholds: unknown key"),
        ({}, "churn_features.reference: required key is missing"),
    ],
)
def test_bad_entries_name_the_key(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="correct the keys") as err:
        view_checks_from_dict({"churn_features": entry})
    assert message in str(err.value)


def test_naive_and_aware_bounds_compare_as_utc() -> None:
    checks = view_checks_from_dict({"v": {"reference": {"start": "2024-01-01", "end": "2024-01-02T00:00:00+00:00"}}})
    assert checks["v"].reference.end == "2024-01-02T00:00:00+00:00"
    with pytest.raises(ConfigError, match="must be before"):
        view_checks_from_dict({"v": {"reference": {"start": "2024-01-02T01:00:00+01:00", "end": "2024-01-01T23:00:00"}}})


def test_unknown_view_names_the_declared_ones(tmp_path: Path) -> None:
    path = tmp_path / "feature_checks.yaml"
    path.write_text("churn_features:\n  reference: {start: '2024-01-01', end: '2024-07-01'}\n")
    with pytest.raises(ConfigError, match="'fraud_features' has no checks.*use one of: churn_features"):
        view_check("fraud_features", path)
    path.write_text("churn_features: [oops\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_view_checks(path)

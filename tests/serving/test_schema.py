"""Request validation: every malformed value is named with its instance and field."""

from __future__ import annotations

import pytest

from serving.schema import FeatureSchema

pytestmark = pytest.mark.unit

SCHEMA = FeatureSchema(numeric=("a", "b"), categorical=("c",))


@pytest.mark.parametrize(
    ("instances", "needle"),
    [
        ([], "non-empty"),
        ({"a": 1}, "non-empty list"),
        ([{"a": 1.0, "b": float("nan"), "c": "x"}], "instances[0].b: expected a finite number, got nan"),
        ([{"a": 1.0, "b": float("inf"), "c": "x"}], "instances[0].b"),
        ([{"a": True, "b": 1.0, "c": "x"}], "instances[0].a"),
        ([{"a": 1.0, "b": 1.0, "c": "x"}, {"a": 1.0, "c": "x"}], "instances[1]: missing feature 'b'"),
        ([{"a": 1.0, "b": 1.0, "c": None}], "instances[0].c: expected a string"),
        (["row"], "instances[0] must be an object"),
    ],
)
def test_bad_instances_name_the_field(instances: object, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        SCHEMA.validate(instances)
    assert needle in str(err.value)


def test_valid_rows_keep_only_features_in_order() -> None:
    rows = SCHEMA.validate([{"c": "x", "b": 2, "a": 1, "id": 9}])
    assert rows == [{"a": 1.0, "b": 2.0, "c": "x"}]
    assert list(rows[0]) == ["a", "b", "c"]


def test_columns_must_be_complete_and_equal_length() -> None:
    assert SCHEMA.validate_columns({"a": [1, 2], "b": [3, 4], "c": [b"x", "y"]})[0] == {"a": 1.0, "b": 3.0, "c": "x"}
    with pytest.raises(ValueError, match="missing feature tensor 'c'"):
        SCHEMA.validate_columns({"a": [1], "b": [2]})
    with pytest.raises(ValueError, match="same non-zero length"):
        SCHEMA.validate_columns({"a": [1], "b": [2, 3], "c": ["x"]})

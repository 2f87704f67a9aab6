"""The Feast repo agrees with the policies and the generators: names, columns and types."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pandas as pd
import pytest

from components.data.scenarios import SCENARIOS, generate
from components.policy import load_policy
from components.settings import FEATURE_REPO_DIR

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def definitions() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_dl_defs_test", FEATURE_REPO_DIR / "definitions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_feature_service_serves_the_policy(definitions: ModuleType, name: str) -> None:
    from feast.types import Float64, Int64, String

    policy = load_policy(name)
    service = definitions.services[name]
    assert service.name == policy.feature_service
    view = definitions.views[name]
    assert view.entities == [definitions.entities[name].name]
    assert definitions.entities[name].join_key == policy.entity
    types = {f.name: f.dtype for f in view.schema}
    wanted = [*policy.features, *policy.categorical_features, *([policy.segment_column] if policy.segment_column else [])]
    assert set(wanted) == set(types), "the view holds exactly the policy's inputs"
    sample = generate(name, rows=500)
    for col in wanted:
        if col in policy.categorical_features or col == policy.segment_column:
            assert types[col] == String, col
        elif pd.api.types.is_integer_dtype(sample[col]):
            assert types[col] == Int64, col
        else:
            assert types[col] == Float64, col
    assert view.batch_source.timestamp_field == policy.timestamp

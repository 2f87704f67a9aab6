"""feature_checks.yaml beside definitions.py declares checks for every feature view, each with data in its reference window."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from components.data.scenarios import SCENARIOS, generate, get_spec
from components.features.view_checks import CHECKS_FILE, load_view_checks
from components.settings import FEATURE_REPO_DIR

pytestmark = pytest.mark.unit


def test_every_view_has_checks_whose_reference_window_holds_pre_onset_data() -> None:
    spec = importlib.util.spec_from_file_location("_dl_defs_checks", FEATURE_REPO_DIR / "definitions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    checks = load_view_checks(FEATURE_REPO_DIR / CHECKS_FILE)
    assert set(checks) == {v.name for v in module.views.values()}
    for name in sorted(SCENARIOS):
        ref = checks[f"{name}_features"].reference
        t = generate(name, rows=2_000, seed=0)["event_timestamp"]
        inside = (t >= pd.Timestamp(ref.start, tz="UTC")) & (t < pd.Timestamp(ref.end, tz="UTC"))
        assert inside.sum() >= checks[f"{name}_features"].min_rows, name
        # the reference is taken before the scenario's known drift, so it is the "good" state
        assert pd.Timestamp(ref.end, tz="UTC") <= get_spec(name).onset, name

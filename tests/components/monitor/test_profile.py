"""The reference profile: saved and loaded intact, digest-checked, and the same p-values as the reference rows and alibi-detect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.errors import DataError
from components.monitor.drift import feature_drift
from components.monitor.engine import run_monitors
from components.monitor.profile import ReferenceProfile, load_profile
from components.monitor.psi import PSIReference
from components.policy import policy_from_dict
from tests.components.monitor.test_drift import _alibi_feature_scores

NUMERIC = ["a", "b", "c"]


def _policy(monitors: list[dict]) -> object:
    return policy_from_dict({"model": "m", "entity": "id", "label": "y", "features": NUMERIC, "categorical_features": ["colour"],
                             "segments": {"column": "colour", "values": ["red", "blue"]}, "monitors": monitors,
                             "actions": [{"when": [monitors[0]["name"]], "action": "alert"}]})


def _window(seed: int, n: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "id": np.arange(n), "event_timestamp": pd.date_range("2025-01-01", periods=n, freq="min", tz="UTC") + pd.Timedelta(days=seed),
        "a": rng.normal(shift, 1, n), "b": np.round(rng.normal(size=n), 1),  # b: many ties
        "c": rng.exponential(1 + shift, n), "colour": rng.choice(["red", "blue", "green"], n, p=[0.5, 0.3 + shift / 5, 0.2 - shift / 5]),
        "y": (rng.random(n) < 0.3 + shift / 4).astype(float), "prediction": rng.beta(2, 5 - shift, n)})
    frame.loc[rng.choice(n, 20, replace=False), "a"] = np.nan
    frame.loc[rng.choice(n, 50, replace=False), "y"] = np.nan
    return frame


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame, Path, str]:
    ref, cur = _window(1, 3000, 0.0), _window(2, 2000, 0.15)
    path = tmp_path_factory.mktemp("profile") / "ref.npz"
    policy = _policy([{"name": "fd", "type": "feature_drift"}])
    return ref, cur, path, ReferenceProfile.build(policy, ref).save(path)


@pytest.mark.unit
@pytest.mark.parametrize("numeric_test", ["ks", "cvm"])
def test_profile_p_values_equal_the_reference_rows_and_alibi_detect(saved, numeric_test: str) -> None:
    ref, cur, path, digest = saved
    profile = load_profile(path, digest)
    from_rows = {r.feature: r for r in feature_drift(ref, cur, NUMERIC, ["colour"], numeric_test=numeric_test)}
    from_profile = {r.feature: r for r in feature_drift(profile.scope(None), cur, NUMERIC, ["colour"], numeric_test=numeric_test)}
    assert {f: (r.statistic, r.p_value, r.drift, r.details) for f, r in from_rows.items()} == \
           {f: (r.statistic, r.p_value, r.drift, r.details) for f, r in from_profile.items()}
    assert from_profile["a"].drift and from_profile["a"].details["nan_reference"] == 20
    for f in NUMERIC:  # alibi-detect on the same rows, side by side (it keeps p-values as float32)
        r, c = ref[f].dropna().to_numpy(), cur[f].dropna().to_numpy()
        assert from_profile[f].p_value == pytest.approx(_alibi_feature_scores(numeric_test, r, c)[1], rel=1e-6, abs=1e-30)
    codes = pd.Categorical(pd.concat([ref["colour"], cur["colour"]])).codes
    assert from_profile["colour"].p_value == pytest.approx(
        _alibi_feature_scores("chi2", codes[: len(ref)].astype(float), codes[len(ref):].astype(float))[1], rel=1e-6, abs=1e-30)


@pytest.mark.unit
def test_segments_labels_predictions_and_psi_run_on_the_profile_as_on_the_rows(saved) -> None:
    ref, cur, path, digest = saved
    policy = _policy([{"name": "fd", "type": "feature_drift", "per_segment": True, "numeric_test": "cvm"},
                      {"name": "pd", "type": "prediction_drift", "per_segment": True},
                      {"name": "ld", "type": "label_drift", "test": "fet"}])
    profile = ReferenceProfile.build(policy, ref)
    rows = run_monitors(policy, ref, cur)
    only_profile = run_monitors(policy, None, cur, profile=profile)
    assert only_profile.reference_window["profiled_monitors"] == ["fd", "pd", "ld"]
    assert only_profile.reference_window["rows"] == rows.reference_window["rows"] == 3000
    for a, b in zip(rows.monitors, only_profile.monitors, strict=True):
        assert a["fired"] == b["fired"] and a["summary"] == b["summary"], a["name"]
        key = [(r["feature"], r["segment"], r["test"], r["statistic"], r["p_value"]) for r in a["results"]]
        assert key == [(r["feature"], r["segment"], r["test"], r["statistic"], r["p_value"]) for r in b["results"]], a["name"]
    segments = {r["segment"] for r in only_profile.monitor("fd")["results"]}
    assert segments == {None, "red", "blue"} and any(r["test"] == "psi" for r in only_profile.monitor("fd")["results"])


@pytest.mark.unit
def test_categorical_psi_buckets_from_counts_equal_the_fit_on_values() -> None:
    values = np.array(["a"] * 5 + ["other"] * 2 + ["b"])
    fitted = PSIReference.fit(values, categorical=True)
    from_counts = PSIReference.from_profile({"a": 5, "b": 1, "other": 2}, 0)
    assert fitted.categories == from_counts.categories and fitted.counts.tolist() == from_counts.counts.tolist() == [5, 1, 2]


@pytest.mark.unit
def test_monitors_a_profile_cannot_serve_need_the_rows(saved) -> None:
    ref, cur, _, _ = saved
    policy = _policy([{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.5},
                      {"name": "fd", "type": "feature_drift"}])
    with pytest.raises(DataError, match=r"monitors \['acc'\] need the reference rows.*--reference"):
        run_monitors(policy, None, cur, profile=ReferenceProfile.build(policy, ref))
    report = run_monitors(policy, ref, cur, profile=ReferenceProfile.build(policy, ref))  # with the rows: both run
    assert report.reference_window["profiled_monitors"] == ["fd"] and report.monitor("acc")["results"]


@pytest.mark.unit
def test_a_changed_or_foreign_file_is_refused(saved, tmp_path: Path) -> None:
    _, _, path, digest = saved
    changed = tmp_path / "changed.npz"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    changed.write_bytes(bytes(data))
    with pytest.raises(DataError, match="does not match the SHA-256 recorded for it"):
        load_profile(changed, digest)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.arange(3))
    with pytest.raises(DataError, match="is not a driftloop profile"):
        load_profile(foreign)
    with pytest.raises(DataError, match="does not exist"):
        load_profile(tmp_path / "missing.npz")

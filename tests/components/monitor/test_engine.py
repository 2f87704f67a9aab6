"""The engine: time order, baselines, segments, fire_on, missing labels, one entry per monitor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.monitor.engine import run_monitors
from components.policy import policy_from_dict

pytestmark = pytest.mark.unit
N = 1200


def _window(start: str, seed: int, flip: float = 0.05, shift: float = 0.0, seg_flip: dict[str, float] | None = None) -> pd.DataFrame:
    """x1 drives the label; ``flip`` mislabels rows (hurts accuracy), ``shift`` moves x2 (drift)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=N)
    seg = rng.choice(["a", "b"], N)
    y = (x1 > 0).astype(int)
    flip_p = np.full(N, flip)
    for s, p in (seg_flip or {}).items():
        flip_p[seg == s] = p
    y = np.where(rng.random(N) < flip_p, 1 - y, y)
    return pd.DataFrame({
        "event_timestamp": pd.date_range(start, periods=N, freq="h", tz="UTC"),
        "x1": x1, "x2": rng.normal(shift, 1, N), "colour": rng.choice(["red", "green", "blue"], N), "seg": seg,
        "y": y, "prediction": 1 / (1 + np.exp(-3 * x1)),
    })


def _policy(monitors: list[dict], actions: list[dict] | None = None):
    return policy_from_dict({
        "model": "toy", "entity": "id", "label": "y", "features": ["x1", "x2"], "categorical_features": ["colour"],
        "segments": {"column": "seg", "values": ["a", "b"]}, "monitors": monitors,
        "actions": actions if actions is not None else [{"when": [monitors[0]["name"]], "strategy": "full"}],
    })


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return _window("2025-01-01", seed=1)


def test_quiet_window_fires_nothing_and_drift_fires_only_on_the_shifted_feature(ref) -> None:
    policy = _policy([{"name": "fd", "type": "feature_drift", "p_value": 0.01},
                      {"name": "pd", "type": "prediction_drift", "p_value": 0.01}])
    quiet = run_monitors(policy, ref, _window("2025-03-01", seed=2))
    assert quiet.fired_monitors() == [] and quiet.decision["action"] == "none"
    shifted = run_monitors(policy, ref, _window("2025-03-01", seed=3, shift=0.6))
    fd = shifted.monitor("fd")
    drifted = {r["feature"] for r in fd["results"] if r["drift"]}
    assert drifted == {"x2"}, fd["summary"]
    assert "x2 (ks p=" in fd["summary"]
    assert set(fd["distributions"]) == {"x2"} and fd["distributions"]["x2"]["kind"] == "numeric"
    assert not shifted.monitor("pd")["fired"], "x2 does not feed the prediction"
    assert shifted.decision["action"] == "retrain"


def test_fire_on_psi_ignores_small_significant_shifts(ref) -> None:
    base = {"name": "fd", "type": "feature_drift", "features": ["x2"], "p_value": 0.05}
    cur = _window("2025-03-01", seed=4, shift=0.2)  # significant at n=1200, PSI well under 0.25
    on_test = run_monitors(_policy([base]), ref, cur).monitor("fd")
    on_psi = run_monitors(_policy([{**base, "fire_on": "psi"}]), ref, cur).monitor("fd")
    assert on_test["fired"] and not on_psi["fired"]
    psi = [r for r in on_psi["results"] if r["test"] == "psi"]
    assert psi and psi[0]["statistic"] < 0.25
    big = run_monitors(_policy([{**base, "fire_on": "psi"}]), ref, _window("2025-03-01", seed=4, shift=1.5)).monitor("fd")
    assert big["fired"] and "PSI drift: x2" in big["summary"]


def test_accuracy_floor_with_figures_and_insufficient_data(ref) -> None:
    policy = _policy([{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.85, "min_samples": 200}])
    bad = run_monitors(policy, ref, _window("2025-03-01", seed=5, flip=0.3), model_version="9")
    (r,) = bad.monitor("acc")["results"]
    assert r["drift"] and r["statistic"] < 0.8
    reason = bad.decision["reasons"][0]
    assert reason.startswith("acc: accuracy 0.") and "< 0.85 (n=1200, 95% CI 0." in reason
    few = _window("2025-03-01", seed=5, flip=0.3)
    few.loc[few.index[150:], "y"] = np.nan  # labels not known yet
    thin = run_monitors(policy, ref, few)
    assert thin.monitor("acc")["results"][0]["status"] == "insufficient_data"
    assert not thin.monitor("acc")["fired"] and thin.decision["action"] == "none"
    no_labels = run_monitors(policy, ref, few.drop(columns="y"))
    assert no_labels.monitor("acc")["results"][0]["status"] == "insufficient_data"
    assert any("no label column 'y'" in w for w in no_labels.warnings)


def test_relative_drop_uses_given_baseline_or_the_reference_per_segment(ref) -> None:
    policy = _policy([{"name": "acc_b", "type": "performance", "metric": "accuracy", "segment": "b", "max_relative_drop": 0.05, "min_samples": 200}])
    cur = _window("2025-03-01", seed=6, seg_flip={"b": 0.15})  # segment b loses ~10 points of accuracy
    from_ref = run_monitors(policy, ref, cur).monitor("acc_b")
    (r,) = from_ref["results"]
    assert r["segment"] == "b" and r["drift"]
    expected = ((ref.prediction >= 0.5) == ref.y)[ref.seg == "b"].mean()
    assert r["details"]["baseline"] == pytest.approx(expected)
    generous = run_monitors(policy, ref, cur, baseline={"overall": {"accuracy": 0.99}, "segments": {"b": {"accuracy": 0.86}}})
    (g,) = generous.monitor("acc_b")["results"]
    assert g["details"]["baseline"] == 0.86 and not g["drift"], "a registry baseline overrides the reference"


def test_per_segment_runs_every_segment_and_names_the_failing_one(ref) -> None:
    policy = _policy([{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.85, "per_segment": True, "min_samples": 200}])
    report = run_monitors(policy, ref, _window("2025-03-01", seed=7, seg_flip={"a": 0.3}))
    by_seg = {r["segment"]: r["drift"] for r in report.monitor("acc")["results"]}
    assert by_seg == {None: True, "a": True, "b": False}


def test_current_rows_are_put_in_time_order_first(ref) -> None:
    policy = _policy([{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.85, "min_samples": 200},
                      {"name": "fd", "type": "feature_drift", "p_value": 0.01}])
    cur = _window("2025-03-01", seed=8)
    shuffled = cur.sample(frac=1.0, random_state=0)
    a, b = run_monitors(policy, ref, cur, model_version="1"), run_monitors(policy, ref, shuffled, model_version="1")
    assert a.window == b.window and a.window["start"] == "2025-03-01T00:00:00+00:00"
    assert [m["results"] for m in a.monitors] == [m["results"] for m in b.monitors]
    assert a.decision == b.decision


def test_label_drift_reports_rates(ref) -> None:
    policy = _policy([{"name": "ld", "type": "label_drift", "p_value": 0.01}])
    cur = _window("2025-03-01", seed=9)
    cur["y"] = np.where(np.random.default_rng(0).random(N) < 0.3, 1, cur["y"])  # more positives
    m = run_monitors(policy, ref, cur).monitor("ld")
    assert m["fired"] and "label rate 0." in m["summary"] and "-> 0.6" in m["summary"]


def test_every_monitor_entry_has_the_report_keys(ref) -> None:
    policy = _policy([{"name": "fd", "type": "feature_drift"}, {"name": "ld", "type": "label_drift"},
                      {"name": "acc", "type": "performance", "metric": "auc", "min": 0.6}])
    progress: list[str] = []
    report = run_monitors(policy, ref, _window("2025-03-01", seed=10), progress=progress.append)
    assert progress == ["fd", "ld", "acc"]
    for m in report.monitors:
        assert {"name", "type", "fired", "results", "summary"} <= set(m)
        assert isinstance(m["fired"], bool) and m["summary"]
        for r in m["results"]:
            assert {"test", "statistic", "p_value", "threshold", "drift", "segment", "detected_at", "status"} <= set(r)
            assert r.get("feature") or r.get("metric")


def test_rows_without_a_prediction_are_not_counted_as_errors(ref) -> None:
    policy = _policy([{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.85, "min_samples": 200},
                      {"name": "err", "type": "concept_drift", "detector": "adwin", "min_samples": 200}])
    cur = _window("2025-03-01", seed=11)
    cur.loc[cur.index[::4], "prediction"] = np.nan  # not scored yet
    report = run_monitors(policy, ref, cur)
    (acc,) = report.monitor("acc")["results"]
    assert acc["details"]["n"] == N - N // 4 and acc["statistic"] > 0.9
    (err,) = report.monitor("err")["results"]
    assert err["details"]["n"] == N - N // 4 and not err["drift"]


def test_multivariate_test_is_reported_and_can_fire_the_monitor(ref) -> None:
    policy = _policy([{"name": "fd", "type": "feature_drift", "features": ["x1", "x2"], "multivariate": "classifier", "p_value": 0.01}])
    quiet = run_monitors(policy, ref, _window("2025-03-01", seed=12)).monitor("fd")
    (mv,) = [r for r in quiet["results"] if r["test"] == "classifier"]
    assert not mv["drift"] and not quiet["fired"] and "multivariate classifier no drift" in quiet["summary"]
    shifted = run_monitors(policy, ref, _window("2025-03-01", seed=12, shift=0.5)).monitor("fd")
    (mv,) = [r for r in shifted["results"] if r["test"] == "classifier"]
    assert mv["drift"] and shifted["fired"] and "multivariate classifier drift" in shifted["summary"]


def test_a_feature_drifting_in_one_segment_is_plotted_for_that_segment(ref) -> None:
    policy = _policy([{"name": "fd", "type": "feature_drift", "features": ["x2"], "segment": "b", "p_value": 0.01}])
    cur = _window("2025-03-01", seed=13)
    cur.loc[cur["seg"] == "b", "x2"] += 1.0
    m = run_monitors(policy, ref, cur).monitor("fd")
    assert [(r["segment"], r["drift"]) for r in m["results"] if r["test"] == "ks"] == [("b", True)]
    (key,) = m["distributions"]
    assert key == "x2[b]"
    dist = m["distributions"][key]
    centres = (np.array(dist["edges"][:-1]) + np.array(dist["edges"][1:])) / 2
    shift = float(centres @ np.array(dist["current"]) - centres @ np.array(dist["reference"]))
    assert 0.7 < shift < 1.3, "the plotted current distribution is segment b's, shifted by ~1"


def test_feature_drift_run_does_not_import_tensorflow_or_alibi_detect() -> None:
    """ks / cvm / chi2 / fet on numeric and categorical columns run on the fast path: a monitoring
    run without an online detector, MMD or tabular: true never loads alibi-detect (and TensorFlow)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tests.components.monitor.test_engine import _policy, _window\n"
        "from components.monitor.engine import run_monitors\n"
        "policy = _policy([{'name': 'fd', 'type': 'feature_drift', 'per_segment': True},\n"
        "                  {'name': 'fd_cvm', 'type': 'feature_drift', 'numeric_test': 'cvm', 'features': ['x1', 'x2']},\n"
        "                  {'name': 'pd', 'type': 'prediction_drift'}, {'name': 'ld', 'type': 'label_drift', 'test': 'fet'}])\n"
        "report = run_monitors(policy, _window('2025-01-01', 0), _window('2025-03-01', 1, shift=0.5))\n"
        "assert report.monitor('fd')['fired']\n"
        "print(sorted(m for m in ('tensorflow', 'alibi_detect') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]"), out


def test_prepare_window_orders_rows_without_touching_the_input_and_shares_an_ordered_one() -> None:
    from components.monitor.context import prepare_window

    policy = policy_from_dict({"model": "m", "entity": "id", "label": "y", "features": ["x1"], "monitors": [{"name": "fd", "type": "feature_drift"}]})
    ordered = _window("2025-01-01", 1)
    shuffled = ordered.sample(frac=1, random_state=0)
    shuffled["event_timestamp"] = shuffled["event_timestamp"].astype(str)  # text, as a CSV gives it
    before = shuffled.copy()
    out = prepare_window(policy, shuffled)
    pd.testing.assert_frame_equal(shuffled, before)  # the caller's frame is untouched
    assert out["event_timestamp"].is_monotonic_increasing and list(out.index) == list(range(N))
    assert np.allclose(out["x1"], ordered["x1"]) and "_driftloop_pred_label" in out
    # already in time order with UTC timestamps: the columns are shared, not copied
    same = prepare_window(policy, ordered)
    assert np.shares_memory(same["x1"].to_numpy(), ordered["x1"].to_numpy()) and "_driftloop_pred_label" not in ordered

"""``driftloop monitor``: exit codes, files written, one-line errors, scoring with the registered model.

Unit tests, except the one that trains and registers a model in a local MLflow store (integration).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from driftloop.cli import main

REPO = Path(__file__).resolve().parents[2]
POLICY = {
    "model": "toy", "entity": "id", "label": "y", "features": ["x1", "x2"], "categorical_features": ["colour"],
    "monitors": [
        {"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.85, "min_samples": 200},
        {"name": "fd", "type": "feature_drift", "p_value": 0.01},
    ],
    "actions": [{"when": ["acc"], "strategy": "recent_window", "window": "30d"}, {"when": ["fd"], "action": "alert"}],
}


def _window(start: str, seed: int, flip: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 800
    x1 = rng.normal(size=n)
    y = np.where(rng.random(n) < flip, x1 <= 0, x1 > 0).astype(int)
    return pd.DataFrame({"id": np.arange(n), "event_timestamp": pd.date_range(start, periods=n, freq="h", tz="UTC"),
                         "x1": x1, "x2": rng.normal(size=n), "colour": rng.choice(["red", "blue"], n), "y": y,
                         "prediction": 1 / (1 + np.exp(-3 * x1))})


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("monitor_cli")
    policy = d / "toy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    ref, good, bad = d / "ref.parquet", d / "good.csv", d / "bad.parquet"
    _window("2025-01-01", 1, 0.03).to_parquet(ref)
    _window("2025-03-01", 2, 0.03).to_csv(good, index=False)
    _window("2025-03-01", 3, 0.30).to_parquet(bad)
    return {"policy": policy, "ref": ref, "good": good, "bad": bad, "dir": d}


def _run(files: dict[str, Path], current: Path, out: Path, *extra: str) -> int:
    return main(["monitor", "--policy", str(files["policy"]), "--reference", str(files["ref"]), "--current", str(current),
                 "--out", str(out), "--no-notify", *extra])


@pytest.mark.unit
def test_quiet_window_exits_0_and_writes_both_reports(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(files, files["good"], tmp_path / "out", "--model-version", "4") == 0
    out = capsys.readouterr().out
    assert "decision: none" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["decision"]["action"] == "none" and report["model_version"] == "4"
    assert [m["name"] for m in report["monitors"]] == ["acc", "fd"]
    assert (tmp_path / "out" / "report.html").stat().st_size > 100_000, "plotly is inlined"


@pytest.mark.unit
def test_degraded_window_prints_the_retrain_decision_with_reasons(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(files, files["bad"], tmp_path / "out") == 0
    out = capsys.readouterr().out
    assert "decision: retrain (strategy recent_window, window 30d)" in out
    assert "acc: accuracy 0." in out and "< 0.85 (n=800" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["decision"]["strategy"] == "recent_window" and report["decision"]["window"] == "30d"


@pytest.mark.unit
def test_missing_column_is_one_line_and_exit_2(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.csv"
    _window("2025-03-01", 2, 0.03).rename(columns={"x2": "x_2"}).to_csv(broken, index=False)
    assert _run(files, broken, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: current data has no column 'x2' (policy.features) (fix: did you mean 'x_2'? rename the column or fix the policy)"
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.unit
def test_missing_file_and_bad_policy_exit_2(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(files, tmp_path / "nope.parquet", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "current data" in err and "not found" in err
    bad_policy = tmp_path / "p.yaml"
    bad_policy.write_text(yaml.safe_dump({**POLICY, "monitors": [{"name": "acc", "type": "performance", "metric": "acuracy", "min": 0.8}]}))
    code = main(["monitor", "--policy", str(bad_policy), "--reference", str(files["ref"]), "--current", str(files["good"]), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "monitors.0.metric" in err and err.count("\n") == 1


@pytest.mark.unit
def test_entry_point_exit_code_and_no_traceback(files, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not data")
    proc = subprocess.run([sys.executable, "-m", "driftloop", "monitor", "--policy", str(files["policy"]), "--reference", str(files["ref"]),
                           "--current", str(text), "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "error: current data '" in proc.stderr and "neither parquet nor CSV" in proc.stderr


@pytest.mark.unit
def test_webhook_that_is_down_is_a_warning_in_the_report(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import free_port

    policy = tmp_path / "hooked.yaml"
    policy.write_text(yaml.safe_dump({**POLICY, "alerting": {"webhook": f"http://127.0.0.1:{free_port()}/hook/secret", "allow_private_webhook": True}}))
    code = main(["monitor", "--policy", str(policy), "--reference", str(files["ref"]), "--current", str(files["bad"]), "--out", str(tmp_path / "o")])
    assert code == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    (note,) = report["notifications"]
    assert note["status"] == "failed" and "secret" not in json.dumps(note)
    assert any("unreachable" in w for w in report["warnings"])
    assert "warning:" in capsys.readouterr().out


@pytest.mark.integration
def test_without_predictions_or_reference_the_registered_champion_fills_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Train and register a churn champion in a local MLflow store, then monitor raw post-onset data."""
    from components.data.scenarios import generate
    from components.policy import load_policy
    from components.registry import ModelRegistry
    from components.settings import Settings
    from components.training.datasets import build_training_set
    from components.training.evaluate import evaluate
    from components.training.trainers import train_model

    monkeypatch.setenv("DRIFTLOOP_WORKDIR", str(tmp_path / "work"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DRIFTLOOP_MLFLOW_TRACKING_URI", raising=False)
    policy = load_policy("churn")
    frame = generate("churn", rows=12_000, seed=0)
    data = build_training_set(policy, "full", pd.Timestamp("2024-12-31", tz="UTC"), source=frame)
    model = train_model(policy, data.train)
    registry = ModelRegistry(Settings.from_env())
    version = registry.register(policy, model, data, evaluate(policy, model, None, data.holdout)).version
    registry.promote(policy.model, version)
    baseline = registry.baseline_metrics(policy.model, str(version))

    ts = frame[policy.timestamp]
    current = tmp_path / "after.parquet"
    frame[(ts >= pd.Timestamp("2025-07-01", tz="UTC")) & (ts < pd.Timestamp("2025-09-01", tz="UTC"))].to_parquet(current)
    code = main(["monitor", "--policy", "churn", "--current", str(current), "--out", str(tmp_path / "out"), "--no-notify"])
    assert code == 0, capsys.readouterr().err
    assert f"using registered model churn v{version}" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["model_version"] == str(version)
    (acc,) = [m for m in report["monitors"] if m["name"] == "accuracy_floor"][0]["results"]
    assert acc["details"]["baseline"] == pytest.approx(baseline["overall"]["accuracy"]), "the registry's baseline is used"
    assert report["reference_window"]["rows"] == len(registry.reference_sample(policy.model, str(version)))
    assert report["decision"]["action"] == "retrain"


@pytest.mark.unit
def test_without_predictions_and_without_a_registry_is_one_line(files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DRIFTLOOP_WORKDIR", str(tmp_path / "empty"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DRIFTLOOP_MLFLOW_TRACKING_URI", raising=False)
    raw = tmp_path / "raw.csv"
    _window("2025-03-01", 2, 0.03).drop(columns="prediction").to_csv(raw, index=False)
    assert _run(files, raw, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "no model registry at sqlite:///" in err and err.count("\n") == 1
    assert not (tmp_path / "empty").exists(), "a failed lookup creates no MLflow store"


DRIFT_ONLY = {**POLICY, "monitors": [{"name": "fd", "type": "feature_drift", "p_value": 0.01}, {"name": "pd", "type": "prediction_drift"}],
              "actions": [{"when": ["fd"], "action": "alert"}]}


@pytest.mark.unit
def test_a_saved_profile_gives_the_reports_of_the_reference_rows_and_a_changed_one_is_refused(files, tmp_path: Path,
                                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    policy, shifted = tmp_path / "drift.yaml", tmp_path / "shifted.parquet"
    policy.write_text(yaml.safe_dump(DRIFT_ONLY))
    frame = pd.read_parquet(files["bad"])
    frame.assign(x2=frame["x2"] + 0.4).to_parquet(shifted)
    base = ["monitor", "--policy", str(policy), "--current", str(shifted), "--no-notify"]
    prof = tmp_path / "ref.npz"
    assert main([*base, "--reference", str(files["ref"]), "--out", str(tmp_path / "rows")]) == 0
    assert main([*base, "--reference", str(files["ref"]), "--save-profile", str(prof), "--out", str(tmp_path / "saved")]) == 0
    assert main([*base, "--profile", str(prof), "--out", str(tmp_path / "profiled")]) == 0
    assert "reference profile: " in capsys.readouterr().out

    def results(name: str) -> list[tuple]:
        report = json.loads((tmp_path / name / "report.json").read_text())
        return [(m["name"], m["fired"], r["feature"], r["test"], r["statistic"], r["p_value"]) for m in report["monitors"] for r in m["results"]]

    assert results("rows") == results("saved") == results("profiled")
    assert {m for m, fired, *_ in results("profiled") if fired} == {"fd"}
    data = bytearray(prof.read_bytes())
    data[len(data) // 2] ^= 1
    prof.write_bytes(bytes(data))
    assert main([*base, "--profile", str(prof), "--out", str(tmp_path / "changed")]) == 2
    err = capsys.readouterr().err
    assert "does not match the SHA-256" in err and err.count("\n") == 1


@pytest.mark.unit
def test_a_plain_monitor_run_never_imports_tensorflow_or_alibi_detect(files, tmp_path: Path) -> None:
    """In a fresh interpreter: ks/chi2 feature drift, prediction drift, PSI and performance run without alibi-detect."""
    code = ("import json, sys\nfrom driftloop.cli import main\n"
            f"rc = main({['monitor', '--policy', str(files['policy']), '--reference', str(files['ref']), '--current', str(files['bad']), '--out', str(tmp_path / 'o'), '--no-notify']!r})\n"
            "print(json.dumps({'rc': rc, 'heavy': sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'alibi_detect', 'torch'))}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"rc": 0, "heavy": []}
    assert json.loads((tmp_path / "o" / "report.json").read_text())["decision"]["action"] == "retrain"

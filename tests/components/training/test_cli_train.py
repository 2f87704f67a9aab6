"""`driftloop train` and `driftloop registry`: the whole retrain through the CLI, and one-line errors."""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from components.policy import Policy
from components.registry import CHALLENGER, CHAMPION, ModelRegistry
from components.settings import Settings
from driftloop.cli import main
from tests.components.training.training_synth import frame, frame_factory, policy, policy_factory  # noqa: F401  (fixtures)
from tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def files(tmp_path: Path, policy: Policy, frame: pd.DataFrame) -> dict[str, Path]:
    policy_file = tmp_path / "credit-test.yaml"
    policy_file.write_text(yaml.safe_dump(policy.model_dump(mode="json", exclude_none=True)))
    data = tmp_path / "credit.parquet"
    frame.to_parquet(data)
    return {"policy": policy_file, "data": data, "workdir": tmp_path / "work"}


def _train(files: dict[str, Path], *extra: str) -> list[str]:
    return ["train", "--policy", str(files["policy"]), "--data", str(files["data"]), "--workdir", str(files["workdir"]), *extra]


def test_train_registers_champion_then_challenger_and_is_idempotent(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_train(files, "--strategy", "full", "--end", "2025-01-25")) == 0
    out = capsys.readouterr().out
    assert "gate (auc): PASSED" in out and "no champion: absolute checks only" in out
    assert "registered credit-test version 1, alias champion" in out

    report = files["workdir"] / "verdict.html"
    assert main(_train(files, "--strategy", "full", "--end", "2025-02-01", "--decision-id", "dec-9", "--report", str(report))) == 0
    out = capsys.readouterr().out
    page = report.read_text()
    assert "overall auc: challenger" in page and "plotly" in page and "<script src=" not in page  # self-contained
    assert "overall auc: challenger" in out and "segment subprime" in out
    registry = ModelRegistry(Settings(workdir=files["workdir"]))
    champion = registry.get("credit-test", CHAMPION)
    challenger = registry.get("credit-test", CHALLENGER)
    assert champion is not None and champion.version == 1
    if "gate (auc): PASSED" in out:
        assert challenger is not None and challenger.version == 2 and "alias challenger" in out
    else:
        assert challenger is None and "no alias moved" in out
    assert registry._require("credit-test", 2).params["decision_id"] == "dec-9"

    assert main(_train(files, "--strategy", "full", "--end", "2025-02-01", "--decision-id", "dec-9")) == 0
    assert "already registered for this decision: credit-test version 2" in capsys.readouterr().out
    assert len(registry.versions("credit-test")) == 2


def test_registry_commands(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    workdir = ["--workdir", str(files["workdir"])]
    assert main(_train(files, "--strategy", "recent_window", "--end", "2025-01-25")) == 0
    assert main(_train(files, "--strategy", "cohort", "--cohort", "subprime")) == 0  # --end: the newest row of --data
    out = capsys.readouterr().out
    assert "cohort subprime" in out and "/2025-02-19T23:00:00+00:00" in out
    assert main(["registry", "promote", "--model", "credit-test", "--version", "2", "--actor", "ops", "--reason", "manual", *workdir]) == 0
    assert "champion is now version 2" in capsys.readouterr().out
    assert main(["registry", "list", "--model", "credit-test", *workdir]) == 0
    listing = capsys.readouterr().out
    assert "champion" in listing and "cohort" in listing and "recent_window" in listing
    assert main(["registry", "rollback", "--model", "credit-test", "--reason", "bad canary", *workdir]) == 0
    assert "champion is version 1" in capsys.readouterr().out
    assert main(["registry", "history", "--model", "credit-test", *workdir]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "promote" in lines[-2] and "by ops: manual" in lines[-2]
    assert "rollback" in lines[-1] and "-> 1 (was 2)" in lines[-1] and "bad canary" in lines[-1]


@pytest.mark.parametrize(
    ("args", "edit", "message"),
    [
        (["--end", "2020-01-01"], None, "error: no rows"),
        (["--end", "2025-02-01"], lambda f: f.assign(defaulted=0), "single label class"),
        (["--end", "2025-02-01"], lambda f: f.assign(label_timestamp=f["label_timestamp"] + pd.Timedelta(days=400)), "labels missing for the window"),
        (["--strategy", "emergency", "--end", "2025-02-01", "--window", "10h"], None, "emergency retrain found only 8 labelled rows"),
    ],
)
def test_bad_input_is_one_line_and_registers_nothing(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], args: list[str], edit: Callable[[pd.DataFrame], pd.DataFrame] | None, message: str
) -> None:
    if edit is not None:
        edit(pd.read_parquet(files["data"])).to_parquet(files["data"])
    assert main(_train(files, *args)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "(fix: " in err and len(err.splitlines()) == 1
    # the data is checked before MLflow is touched: no store, so certainly no version
    assert not (files["workdir"] / "mlflow.db").exists()


def test_unreachable_mlflow_is_one_line(files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("DRIFTLOOP_MLFLOW_TRACKING_URI", uri)
    assert main(_train(files, "--end", "2025-02-01")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: MLflow tracking server {uri} is unreachable") and len(err.splitlines()) == 1

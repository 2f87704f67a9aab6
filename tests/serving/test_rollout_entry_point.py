"""``serving.canary.rollout.roll_out`` is the one rollout entry point: it refuses bad rollouts
before any process starts, and ``driftloop rollout``, the KFP canary step and the demo all call it."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import psutil
import pytest
from serving_fixtures import MODEL, free_port, make_data, policy_dict

from components.errors import ConfigError, DataError
from components.policy import load_policy, policy_from_dict
from components.settings import Settings
from serving.canary.controller import RolloutResult
from serving.canary.rollout import roll_out

pytestmark = pytest.mark.integration  # real MLflow registry (SQLite); no server may start


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"challenger_uri": f"models:/{MODEL}/99"}, ConfigError, "does not resolve"),
        ({"challenger_uri": f"models:/{MODEL}@champion"}, ConfigError, "is the champion"),
        ({"checks": [{"metric": "accuracy", "max_drop": 0.02}]}, ConfigError, "needs delayed labels"),
        ({"replay": pd.DataFrame({"x1": [0.1]})}, DataError, "replay data lacks columns ['x2', 'x3', 'segment', 'label']"),
        ({"backend": "mars"}, ConfigError, "unknown canary backend 'mars'"),
        ({"backend": "kubernetes"}, ConfigError, "set DRIFTLOOP_PROMETHEUS_URL"),
    ],
)
def test_refusal_starts_no_process_and_opens_no_port(store, registry, tmp_path: Path, kwargs: dict[str, Any], error: type, needle: str) -> None:
    checks = kwargs.pop("checks", [{"metric": "error_rate", "max": 0.01}])
    backend = kwargs.pop("backend", "local")
    kwargs.setdefault("challenger_uri", f"models:/{MODEL}/{store.versions['good2']}")
    settings = Settings(workdir=tmp_path / "work", mlflow_tracking_uri=store.tracking_uri)
    port, before = free_port(), _children()
    with pytest.raises(error) as err:
        roll_out(policy_from_dict(policy_dict(checks=checks)), settings, backend, router_port=port, registry=registry, **kwargs)
    assert needle in str(err.value)
    assert _children() == before, "a server process was started before the refusal"
    assert not _listening(port) and not (tmp_path / "work" / "servers").exists()
    assert str(registry.get(MODEL, "champion").version) == store.versions["good1"]


def _spy(monkeypatch: pytest.MonkeyPatch, outcome: str = "promoted") -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def fake(*args: Any, **kwargs: Any) -> RolloutResult:
        calls.append((args, kwargs))
        step = {"percent": 100, "decision": "promote", "reasons": ["all checks passed"],
                "checks": [{"metric": "error_rate", "value": 0.0, "threshold": 0.01, "passed": True}]}
        return RolloutResult(outcome, "all checks passed", "1", "2", [step])  # type: ignore[arg-type]

    monkeypatch.setattr("serving.canary.rollout.roll_out", fake)
    return calls


@pytest.mark.unit
@pytest.mark.parametrize(("outcome", "code"), [("promoted", 0), ("rolled_back", 1)])
def test_cli_calls_the_entry_point(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, outcome: str, code: int) -> None:
    from click.testing import CliRunner

    from driftloop.commands.rollout import rollout

    calls = _spy(monkeypatch, outcome)
    monkeypatch.setenv("DRIFTLOOP_WORKDIR", str(tmp_path))
    out = CliRunner().invoke(rollout, ["--policy", "churn", "--replay", "scenario:churn:500", "--interval", "2", "--report", str(tmp_path / "r.html")])
    assert out.exit_code == code, out.output
    (args, kwargs), = calls
    assert args[0].model == "churn" and args[2] == "local"
    assert kwargs["replay"] == "scenario:churn:500" and kwargs["interval_seconds"] == 2
    assert (tmp_path / "r.html").stat().st_size > 10_000


@pytest.mark.unit
def test_kfp_canary_step_calls_the_entry_point(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from components.kfp import canary

    calls = _spy(monkeypatch)
    result = canary.canary_rollout(load_policy("churn"), Settings(workdir=tmp_path), "kubernetes", "prod", "churn-isvc", "", 0.0)
    (args, kwargs), = calls
    assert result.outcome == "promoted" and args[2] == "kubernetes"
    assert kwargs["namespace"] == "prod" and kwargs["isvc"] == "churn-isvc" and kwargs["replay"] is None and kwargs["actor"] == "kfp"


@pytest.mark.unit
def test_demo_rolls_out_through_the_entry_point(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from driftloop.demo import Demo

    calls = _spy(monkeypatch)
    demo = Demo("churn", tmp_path, say=lambda line: None)
    versions = iter([None, SimpleNamespace(version=2), SimpleNamespace(version=1)])  # challenger before, after, champion
    demo.registry = lambda: SimpleNamespace(get=lambda model, alias: next(versions))  # type: ignore[method-assign]
    demo.train = lambda *a, **k: True  # type: ignore[method-assign]
    backend = SimpleNamespace(metrics_targets=lambda: [], challenger_args=None, cohorts={})  # no cohort specialists
    traffic = SimpleNamespace(labels=lambda: pd.DataFrame(columns=["request_id", "churned"]))
    demo._retrain_and_roll_out({"strategy": "full"}, pd.Timestamp("2025-08-01", tz="UTC"), "2025-07", make_data(10, 0), backend, traffic,
                               tmp_path / "log", 0)
    (args, kwargs), = calls
    assert args[0] is demo.rollout_policy and args[2] is backend  # the demo's own router, left running
    assert kwargs["challenger_uri"] == "models:/churn/2" and callable(kwargs["labels"])
    assert kwargs["labels"] is not traffic.labels and kwargs["clock"] is not None  # labels from the store, on the scaled clock
    (record,) = demo.summary["rollouts"]
    assert record["outcome"] == "promoted" and record["steps"][0]["checks"][0]["metric"] == "error_rate"


def test_settings_rollout_overrides_reach_the_controller(store, registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev overlay's DRIFTLOOP_ROLLOUT_STEPS / _INTERVAL_SECONDS shape the rollout the controller runs."""
    import serving.canary.rollout as rollout

    seen: dict[str, Any] = {}

    def controller(policy: Any, backend: Any, source: Any, registry: Any, **kwargs: Any) -> RolloutResult:
        seen.update(steps=list(policy.rollout.steps), interval=policy.rollout.interval_seconds)
        return RolloutResult("promoted", "stub", "1", "2")

    monkeypatch.setattr(rollout, "run_rollout", controller)
    env = {"DRIFTLOOP_WORKDIR": str(tmp_path / "work"), "DRIFTLOOP_MLFLOW_TRACKING_URI": store.tracking_uri,
           "DRIFTLOOP_ROLLOUT_STEPS": "50,100", "DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS": "10"}
    backend = SimpleNamespace(metrics_targets=lambda: [])
    roll_out(policy_from_dict(policy_dict(checks=[{"metric": "error_rate", "max": 0.01}])), Settings.from_env(env), backend,
             challenger_uri=f"models:/{MODEL}/{store.versions['good2']}", registry=registry, metrics_source=object())
    assert seen == {"steps": [50, 100], "interval": 10.0}

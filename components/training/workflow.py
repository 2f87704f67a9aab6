"""One retrain, end to end: training set -> train -> evaluate against the champion -> register -> alias.

The version is always registered (with ``driftloop.gate_passed``); the ``challenger``
alias moves to it only if the gate passes, or ``champion`` when there is no champion yet
and the absolute checks pass. A retry of the same decision (same window, strategy,
cohort and decision id) trains nothing and returns the registered version.

>>> from components.policy import policy_from_dict
>>> raw = {"model": "m", "entity": "id", "label": "y", "features": ["x"],
...     "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.8}]}
>>> default_strategy(policy_from_dict(raw))
'full'
>>> default_strategy(policy_from_dict(raw | {"actions": [
...     {"when": ["acc"], "strategy": "recent_window", "window": "7d"},
...     {"when": ["acc"], "strategy": "emergency", "priority": 10}]}))
'emergency'
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from components.policy import Policy
from components.settings import Settings

PHASES = ("training set", "train", "evaluate", "register")


@dataclass(frozen=True)
class RetrainResult:
    """What a retrain produced; ``alias`` is the alias moved to the version (or ``None``)."""

    training: Any  # TrainingData
    verdict: Any  # Verdict, or None when the registration already existed
    version: Any  # ModelVersionInfo
    alias: str | None
    reused: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def default_strategy(policy: Policy) -> str:
    """The strategy of the policy's highest-priority retrain action (``full`` if none)."""
    actions = sorted((a for a in policy.actions if a.action == "retrain"), key=lambda a: -a.priority)
    return actions[0].strategy if actions else "full"


def retrain(
    policy: Policy,
    strategy: str | None = None,
    end: Any = None,
    *,
    window: str | None = None,
    cohort: str | None = None,
    source: pd.DataFrame | str | Path | None = None,
    settings: Settings | None = None,
    decision_id: str | None = None,
    actor: str = "driftloop",
    registry: Any = None,
    progress: Callable[[str], None] | None = None,
) -> RetrainResult:
    """Retrain ``policy.model`` and register it; see the module docstring for the alias rules.

    ``end`` defaults to the newest timestamp of ``source`` when data is given, else now.
    """
    from components.registry import CHALLENGER, CHAMPION, ModelRegistry
    from components.training.datasets import build_training_set
    from components.training.evaluate import evaluate
    from components.training.trainers import train_model

    settings = settings or Settings.from_env()
    registry = registry or ModelRegistry(settings)
    strategy = strategy or default_strategy(policy)
    if end is None and source is not None:  # a data file: train up to its newest row, not "now"
        if not isinstance(source, pd.DataFrame) and Path(source).exists():
            source = pd.read_parquet(source)
        if isinstance(source, pd.DataFrame) and policy.timestamp in source.columns and len(source):
            end = pd.to_datetime(source[policy.timestamp]).max()
    end = end if end is not None else pd.Timestamp.now(tz="UTC")
    step = progress or (lambda phase: None)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    step(PHASES[0])
    data = build_training_set(policy, strategy, end, window=window, cohort=cohort, settings=settings, source=source)
    timings["training_set"] = time.perf_counter() - started
    key = registry.idempotency_key(policy.model, data.window, data.strategy, data.cohort, decision_id)
    existing = registry.find(policy.model, key)
    if existing is not None:
        return RetrainResult(data, None, existing, None, reused=True, timings=timings)

    step(PHASES[1])
    t = time.perf_counter()
    model = train_model(policy, data.train, data.weights)
    timings["train"] = time.perf_counter() - t

    step(PHASES[2])
    t = time.perf_counter()
    champion_info = registry.get(policy.model, CHAMPION)
    champion = registry.load(policy.model, CHAMPION) if champion_info is not None else None
    verdict = evaluate(policy, model, champion, data.holdout)
    timings["evaluate"] = time.perf_counter() - t

    step(PHASES[3])
    t = time.perf_counter()
    version = registry.register(policy, model, data, verdict, decision_id=decision_id, feature_service=policy.feature_service)
    alias = None
    if verdict.passed:
        reason = "; ".join(verdict.reasons[:1])
        if champion_info is None:
            registry.promote(policy.model, version.version, actor=actor, reason=f"first model ({reason})")
            alias = CHAMPION
        else:
            registry.set_challenger(policy.model, version.version, actor=actor, reason=f"gate passed: {reason}")
            alias = CHALLENGER
    timings["register"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    return RetrainResult(data, verdict, version, alias, timings=timings)


def quiet_ml_logging() -> None:
    """Silence TensorFlow's C++ and Python logging and MLflow's INFO chatter (call before importing them)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    for name in ("mlflow", "alembic", "absl", "tensorflow", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras with file descriptor 2 sent to /dev/null.

    TensorFlow's C++ side logs (CUDA probing, oneDNN notes) before absl logging is
    initialised, which no environment variable silences; errors still raise.
    """
    import sys

    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


"""One retrain, in phases: training set -> fit -> gate against the champion -> register and alias.

Each phase is one function the train pipeline's KFP steps call one each (the CLI's
:func:`retrain` composes them): :func:`training_set`,
:func:`~components.training.trainers.train_model`, :func:`gate`, :func:`register_and_alias`.

The one retrain-and-register rule (:func:`register_and_alias`): every model is
registered with its verdict (``driftloop.gate_passed``), so failures stay auditable; the
first model that passes the gate becomes ``champion`` when there is none; later passing
models become ``challenger``; a failing model gets no alias. A retry of the same decision
(same window, strategy, cohort and decision id) returns the registered version and moves
no alias. A cohort *specialist* (:func:`~components.training.datasets.specialist_cohort`:
trained on one cohort's rows only) follows the same rule with that cohort's aliases
(``champion-<cohort>`` / ``challenger-<cohort>``): it is gated on the cohort's holdout
against the model serving the cohort now (its specialist, else the global champion), and
it never touches the global aliases. :func:`review_specialists` retires a specialist the
global champion has caught up with.

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


def training_set(
    policy: Policy,
    strategy: str | None = None,
    end: Any = None,
    *,
    window: str | None = None,
    cohort: str | None = None,
    source: pd.DataFrame | str | Path | None = None,
    settings: Settings | None = None,
) -> Any:
    """Phase 1: the :class:`~components.training.datasets.TrainingData` for ``strategy`` (default: the policy's).

    ``source`` is a DataFrame, a parquet/CSV file or ``scenario:<name>[:rows]``
    (:func:`components.tables.read_table`); ``None`` or ``""`` reads the Feast training
    set. ``end`` (a timestamp or ISO text) defaults to the newest row of ``source``, else
    now. Empty ``window`` / ``cohort`` mean "from the policy action".
    """
    from components.tables import as_frame
    from components.training.datasets import build_training_set
    from components.windows import parse_time

    frame = as_frame(source, "training", policy.timestamp) if source is not None and not (isinstance(source, str) and not source) else None
    if isinstance(end, str):
        end = parse_time(end, "end")
    if end is None and frame is not None and policy.timestamp in frame.columns and len(frame):
        end = pd.to_datetime(frame[policy.timestamp], utc=True).max()  # a data file: train up to its newest row, not "now"
    end = end if end is not None else pd.Timestamp.now(tz="UTC")
    return build_training_set(policy, strategy or default_strategy(policy), end, window=window or None, cohort=cohort or None,
                              settings=settings, source=frame)


def gate(policy: Policy, model: Any, holdout: pd.DataFrame, registry: Any, cohort: str | None = None) -> Any:
    """Phase 3: the :class:`~components.training.evaluate.Verdict` of ``model`` against the registered champion.

    Both score the same ``holdout`` rows; with no champion yet, the absolute checks decide.
    With ``cohort`` (a specialist), only the holdout rows of that cohort count and the
    model to beat is the one serving the cohort (its specialist, else the global champion).
    """
    from components.training.datasets import cohort_column
    from components.training.evaluate import evaluate

    if cohort is not None:
        column = cohort_column(policy)
        holdout = holdout[holdout[column].astype(str) == str(cohort)] if column in holdout.columns else holdout.iloc[0:0]
    incumbent = registry.serving(policy.model, cohort)
    champion = registry.load(policy.model, incumbent.version) if incumbent is not None else None
    return evaluate(policy, model, champion, holdout)


def register_and_alias(policy: Policy, model: Any, data: Any, verdict: Any, registry: Any, decision_id: str | None = None,
                       actor: str = "driftloop") -> tuple[Any, str | None]:
    """Phase 4: register ``model`` with its verdict and apply the alias rule; return ``(version, alias)``.

    ``alias`` is the alias the version holds afterwards: ``"champion"`` (the first passing
    model), ``"challenger"`` (a later passing one) or ``None`` (it failed the gate). A
    version that already held an alias (a retry, or one promoted or rolled back since) is
    returned as it is: registration and aliasing are idempotent per decision key.

    A specialist (``data`` holds one cohort's rows only) gets the cohort's aliases:
    ``"challenger-<cohort>"`` when something serves the cohort already (its specialist or
    the global champion), ``"champion-<cohort>"`` when nothing does.
    """
    from components.registry import CHALLENGER, CHAMPION
    from components.registry.aliases import alias_for
    from components.training.datasets import specialist_cohort

    cohort = specialist_cohort(data)
    champ, chall = alias_for(CHAMPION, cohort), alias_for(CHALLENGER, cohort)
    version = registry.register(policy, model, data, verdict, decision_id=decision_id, feature_service=policy.feature_service)
    champion = registry.get(policy.model, champ)
    challenger = registry.get(policy.model, chall)
    held = next((alias for alias, info in ((champ, champion), (chall, challenger)) if info is not None and info.version == version.version), None)
    ever_aliased = any(t.startswith(("driftloop.champion", "driftloop.challenger")) and t.endswith("_since") for t in version.tags)
    if held is not None or ever_aliased or not verdict.passed:
        return version, held
    reason = "; ".join(verdict.reasons[:1])
    if registry.serving(policy.model, cohort) is None:
        what = f"first specialist for cohort {cohort}" if cohort else "first model"
        return registry.promote(policy.model, version.version, actor=actor, reason=f"{what} ({reason})", cohort=cohort), champ
    return registry.set_challenger(policy.model, version.version, actor=actor, reason=f"gate passed: {reason}", cohort=cohort), chall


def review_specialists(policy: Policy, holdout: pd.DataFrame, registry: Any, actor: str = "driftloop") -> list[dict[str, Any]]:
    """Retire every cohort specialist the global champion has caught up with; one entry per cohort reviewed.

    For each cohort with a ``champion-<cohort>``, the global champion is gated against the
    specialist on that cohort's rows of ``holdout`` (fresh labelled rows, e.g. the newest
    global retrain's holdout) with the policy's own gate: if the global champion passes
    (at least as good by ``gate.metric`` + ``min_improvement``, no segment regression), the
    specialist is no longer better and is retired (:meth:`~components.registry.ModelRegistry.retire`,
    the gate's first reason in the audit trail), so its route is removed and the cohort is
    served by the global champion. Entries: ``cohort, specialist, champion, rows, retired,
    reason``; a cohort with fewer than 30 rows in ``holdout`` is kept (``retired`` False).
    """
    from components.registry import CHAMPION
    from components.training.datasets import cohort_column
    from components.training.evaluate import evaluate

    champion = registry.get(policy.model, CHAMPION)
    routes = registry.cohort_routes(policy.model)
    if champion is None or not routes:
        return []
    column = cohort_column(policy)
    global_model = registry.load(policy.model, champion.version)
    out = []
    for cohort, version in routes.items():
        rows = holdout[holdout[column].astype(str) == cohort] if column in holdout.columns else holdout.iloc[0:0]
        entry: dict[str, Any] = {"cohort": cohort, "specialist": version, "champion": champion.version, "rows": len(rows), "retired": False}
        if len(rows) < 30 or version == champion.version:
            out.append(entry | {"reason": f"only {len(rows)} holdout rows of cohort {cohort}: kept"})
            continue
        verdict = evaluate(policy, global_model, registry.load(policy.model, version), rows)
        reason = "; ".join(verdict.reasons[:1])
        if verdict.passed:
            registry.retire(policy.model, cohort, actor=actor,
                            reason=f"global champion v{champion.version} is no longer worse than specialist v{version} on cohort {cohort} ({reason})")
        out.append(entry | {"retired": bool(verdict.passed), "reason": reason})
    return out


def retrain(policy: Policy, strategy: str | None = None, end: Any = None, *, window: str | None = None, cohort: str | None = None,
            source: pd.DataFrame | str | Path | None = None, settings: Settings | None = None, decision_id: str | None = None,
            actor: str = "driftloop", registry: Any = None, progress: Callable[[str], None] | None = None) -> RetrainResult:
    """Retrain ``policy.model`` and register it: the four phases in order (see the module docstring).

    ``end`` defaults to the newest timestamp of ``source`` when data is given, else now. A
    decision already registered trains nothing (``reused``).
    """
    from components.registry import ModelRegistry
    from components.training.datasets import specialist_cohort
    from components.training.trainers import train_model

    settings = settings or Settings.from_env()
    registry = registry or ModelRegistry(settings)
    step = progress or (lambda phase: None)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    step(PHASES[0])
    data = training_set(policy, strategy, end, window=window, cohort=cohort, source=source, settings=settings)
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
    verdict = gate(policy, model, data.holdout, registry, cohort=specialist_cohort(data))
    timings["evaluate"] = time.perf_counter() - t

    step(PHASES[3])
    t = time.perf_counter()
    version, alias = register_and_alias(policy, model, data, verdict, registry, decision_id=decision_id, actor=actor)
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


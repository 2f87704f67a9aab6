"""Retraining helpers for the KFP steps: training set, model artifacts, dashboard metrics, registration.

>>> confusion([0, 1, 1], [0.2, 0.9, 0.4])
[[1, 0], [1, 1]]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.kfp.runtime import parse_time
from components.kfp.windows import latest_timestamp, read_source
from components.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from components.policy import Policy


WEIGHT_COLUMN = "_driftloop_weight"  # cohort up-weighting travels with the training rows


def training_data(policy: Policy, strategy: str, end: str, window: str, cohort: str, source: str, settings: Settings) -> Any:
    """The training set for a strategy (components.training.datasets); empty ``end`` = the newest data."""
    from components.training.datasets import build_training_set

    end_ts = parse_time(end, "end") or latest_timestamp(policy, source)
    frame = read_source(source, policy) if source else None
    return build_training_set(policy, strategy, end_ts, window=window or None, cohort=cohort or None, settings=settings, source=frame)


def split_weights(frame: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """Training rows and their sample weights (``None`` when the rows carry none)."""
    if WEIGHT_COLUMN not in frame.columns:
        return frame, None
    return frame.drop(columns=[WEIGHT_COLUMN]), frame[WEIGHT_COLUMN].to_numpy()


def save_model(model: Any, path: str) -> None:
    """Pickle a fitted :class:`~components.training.trainers.TrainedModel` into a KFP Model artifact."""
    import joblib

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)


def load_model(path: str) -> Any:
    """Read a model written by :func:`save_model`."""
    import joblib

    return joblib.load(path)


def roc_points(y: Any, p: Any, points: int = 50) -> tuple[list[float], list[float], list[float]]:
    """A thinned ROC curve (fpr, tpr, threshold) for the KFP ClassificationMetrics artifact.

    >>> fpr, tpr, thr = roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr[0], tpr[-1], len(fpr) == len(tpr) == len(thr)
    (0.0, 1.0, True)
    """
    import numpy as np
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(np.asarray(y, dtype=int), np.asarray(p, dtype=float))
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).astype(int))
    thr = np.clip(thr[keep], 0.0, 1.0)  # sklearn's first threshold is +inf
    return [float(x) for x in fpr[keep]], [float(x) for x in tpr[keep]], [float(x) for x in thr]


def confusion(y: Any, p: Any, threshold: float = 0.5) -> list[list[int]]:
    """The 2x2 confusion matrix (rows: true 0/1, columns: predicted 0/1).

    >>> confusion([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.2])
    [[1, 1], [1, 1]]
    """
    import numpy as np

    y, pred = np.asarray(y, dtype=int), (np.asarray(p, dtype=float) >= threshold).astype(int)
    return [[int(((y == t) & (pred == q)).sum()) for q in (0, 1)] for t in (0, 1)]


def verdict_markdown(verdict: Any) -> str:
    """The champion/challenger gate's verdict as Markdown."""
    head = f"# Gate on {verdict.metric}: {'PASSED' if verdict.passed else 'FAILED'}"
    return "\n".join([head, "", *(f"- {r}" for r in verdict.reasons)]) + "\n"


def champion(policy: Policy, settings: Settings) -> Any:
    """The registered champion (alias ``champion``) as a scorer, or ``None`` before the first one."""
    from components.registry import CHAMPION, ModelRegistry

    registry = ModelRegistry(settings)
    return registry.load(policy.model, CHAMPION) if registry.get(policy.model, CHAMPION) is not None else None


def register_challenger(policy: Policy, model: Any, train: pd.DataFrame, holdout: pd.DataFrame, window: str, strategy: str, cohort: str,
                        verdict: dict[str, Any], decision_key: str, settings: Settings) -> Any:
    """Register the gated model with its lineage (idempotent per window/strategy/decision) as ``challenger``."""
    import pandas as pd

    from components.registry import ModelRegistry
    from components.training.datasets import TrainingData
    from components.training.evaluate import Verdict

    rows, weights = split_weights(train)
    start, _, end = window.partition("/")
    data = TrainingData(rows, holdout, pd.Timestamp(start), pd.Timestamp(end), strategy, cohort or None, weights)
    gate = Verdict(passed=bool(verdict["passed"]), reasons=tuple(verdict["reasons"]), metric=str(verdict["metric"]), challenger=verdict["challenger"],
                   champion=verdict.get("champion"), failed_segments=tuple(verdict.get("failed_segments") or ()))
    registry = ModelRegistry(settings)
    info = registry.register(policy, model, data, gate, decision_id=decision_key or None)
    return registry.set_challenger(policy.model, info.version, actor="kfp", reason=f"gate passed on {gate.metric}; decision {decision_key or '-'}")

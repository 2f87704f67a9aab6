"""Champion/challenger evaluation: both models scored on the same holdout rows, and the gate.

The gate (``policy.gate``): the challenger must beat the champion on ``gate.metric`` by at
least ``min_improvement`` overall (for log loss, lower is better) and must not be worse
than the champion by more than ``max_segment_regression`` in any segment. With no
champion, the challenger must beat trivial baselines (AUC > 0.5, accuracy above the
majority class, log loss below always predicting the base rate).

The metrics are :func:`components.metrics.binary_metrics` (re-exported here), the same
computation the performance monitors run on live windows, so a registered baseline and
the live value compared with it agree by construction.

>>> import numpy as np
>>> m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
>>> round(m["auc"], 2), round(m["gini"], 2), m["accuracy"], m["n"]
(0.75, 0.5, 0.75, 4)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from components.errors import ConfigError, DataError
from components.jsonsafe import json_safe
from components.metrics import LOWER_IS_BETTER, binary_metrics
from components.policy import Policy

__all__ = ["Scorer", "Verdict", "binary_metrics", "evaluate", "score"]


class Scorer(Protocol):
    """Anything with the model contract: ``predict(DataFrame) -> P(label = 1)``."""

    def predict(self, frame: pd.DataFrame) -> Any: ...


@dataclass(frozen=True)
class Verdict:
    """The gate's answer: ``passed``, one readable line per check, and both models' metrics.

    ``challenger`` / ``champion`` are ``{"overall": {metric: value}, "segments": {name:
    {metric: value}}}``; ``champion`` is ``None`` when there was none.
    """

    passed: bool
    reasons: tuple[str, ...]
    metric: str
    challenger: dict[str, Any]
    champion: dict[str, Any] | None = None
    failed_segments: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN becomes ``None``)."""
        return json_safe(asdict(self))


def score(policy: Policy, model: Scorer, holdout: pd.DataFrame) -> dict[str, Any]:
    """``{"overall": metrics, "segments": {value: metrics}}`` for ``model`` on ``holdout``."""
    p = np.asarray(model.predict(holdout[policy.all_features]), dtype=float).reshape(-1)
    if len(p) != len(holdout):
        raise DataError(f"the model returned {len(p)} predictions for {len(holdout)} rows", fix="check the model's predict contract (one P(label=1) per row)")
    y = holdout[policy.label].astype(int).to_numpy()
    result: dict[str, Any] = {"overall": binary_metrics(y, p), "segments": {}}
    if policy.segments:
        column = holdout[policy.segments.column].astype(str).to_numpy()
        for value in policy.segments.values:
            mask = column == value
            result["segments"][value] = binary_metrics(y[mask], p[mask])
    return result


def evaluate(policy: Policy, challenger: Scorer, champion: Scorer | None, holdout: pd.DataFrame, min_segment_rows: int = 30) -> Verdict:
    """Score challenger and champion on the same ``holdout`` rows and apply ``policy.gate``."""
    if champion is not None and champion is challenger:
        raise ConfigError("the champion and the challenger are the same object", fix="load the champion from the registry, not the model just trained")
    if holdout.empty:
        raise DataError("the holdout is empty", fix="use a longer window or a larger trainer.holdout")
    gate = policy.gate
    metric = gate.metric
    lower = metric in LOWER_IS_BETTER
    new = score(policy, challenger, holdout)
    reasons: list[str] = []
    passed = True
    value = new["overall"][metric]
    if not math.isfinite(value):
        return Verdict(False, (f"challenger {metric} is undefined on the holdout ({len(holdout)} rows, one label class?)",), metric, new)
    if champion is None:
        passed, reasons = _absolute_checks(new["overall"], metric)
        return Verdict(passed, tuple(reasons), metric, new)

    try:
        old = score(policy, champion, holdout)
    except DataError:
        raise
    except Exception as exc:  # e.g. the policy's features changed since the champion was trained
        raise DataError(
            f"the champion cannot score the holdout ({exc.__class__.__name__}: {str(exc)[:200]})",
            fix="if the policy's features changed, promote the new model explicitly ('driftloop registry promote') instead of gating it",
        ) from None
    base = old["overall"][metric]
    gain = (base - value) if lower else (value - base)
    ok = gain >= gate.min_improvement
    passed &= ok
    word = "lower" if lower else "higher"
    reasons.append(
        f"overall {metric}: challenger {value:.4f} vs champion {base:.4f}, improvement {gain:+.4f} "
        f"({word} is better; need >= {gate.min_improvement:+.4f}): {'ok' if ok else 'FAIL'}"
    )
    failed: list[str] = []
    for name, seg in new["segments"].items():
        ref = old["segments"][name]
        if seg["n"] < min_segment_rows or not (math.isfinite(seg[metric]) and math.isfinite(ref[metric])):
            reasons.append(f"segment {name}: skipped ({seg['n']} rows, {metric} undefined or fewer than {min_segment_rows} rows)")
            continue
        regression = (seg[metric] - ref[metric]) if lower else (ref[metric] - seg[metric])
        seg_ok = regression <= gate.max_segment_regression
        if not seg_ok:
            failed.append(name)
        reasons.append(
            f"segment {name}: challenger {metric} {seg[metric]:.4f} vs champion {ref[metric]:.4f}, "
            f"regression {regression:+.4f} (max {gate.max_segment_regression:.4f}): {'ok' if seg_ok else 'FAIL'}"
        )
    passed &= not failed
    return Verdict(passed, tuple(reasons), metric, new, old, tuple(failed))


def _absolute_checks(m: dict[str, float], metric: str) -> tuple[bool, list[str]]:
    base_rate = m["positive_rate"]
    majority = max(base_rate, 1 - base_rate)
    base_loss = -(base_rate * math.log(max(base_rate, 1e-7)) + (1 - base_rate) * math.log(max(1 - base_rate, 1e-7)))
    checks = [
        ("auc", m["auc"], 0.5, "above", m["auc"] > 0.5),
        ("accuracy", m["accuracy"], majority, "at least the majority-class rate", m["accuracy"] >= majority),
        ("log_loss", m["log_loss"], base_loss, "below the base-rate log loss", m["log_loss"] < base_loss),
    ]
    reasons = ["no champion: absolute checks only"]
    passed = True
    for name, value, bound, how, ok in checks:
        gating = name in (metric, "auc")  # AUC > 0.5 always; the gate metric too
        if gating:
            passed &= bool(ok)
        reasons.append(f"{name} {value:.4f} {how} {bound:.4f}: {'ok' if ok else ('FAIL' if gating else 'warn')}")
    return passed, reasons


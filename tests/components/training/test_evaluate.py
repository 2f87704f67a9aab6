"""The gate with real numbers: better passes, worse fails, one bad segment fails by name."""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from components.errors import ConfigError
from components.policy import Policy
from components.training.datasets import TrainingData, build_training_set
from components.training.evaluate import binary_metrics, evaluate
from components.training.trainers import TrainedModel, train_model
from tests.components.training.training_synth import frame, frame_factory, policy, policy_factory  # noqa: F401  (fixtures)

pytestmark = pytest.mark.unit

END = pd.Timestamp("2025-02-01", tz="UTC")


class Noisy:
    """A model whose predictions are blended with seeded noise in one segment (or everywhere)."""

    def __init__(self, base: TrainedModel, strength: float, segment: str | None = None, seed: int = 0) -> None:
        self.base, self.strength, self.segment, self.seed = base, strength, segment, seed
        self.segment_of: pd.Series | None = None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        p = self.base.predict(frame)
        noise = np.random.default_rng(self.seed).random(len(p))
        mask = np.ones(len(p), bool) if self.segment is None else (self.segment_of.loc[frame.index] == self.segment).to_numpy()  # type: ignore[union-attr]
        return np.where(mask, (1 - self.strength) * p + self.strength * noise, p)


@pytest.fixture
def data(policy: Policy, frame: pd.DataFrame) -> TrainingData:
    return build_training_set(policy, "full", END, source=frame)


@pytest.fixture
def model(policy: Policy, data: TrainingData) -> TrainedModel:
    return train_model(policy, data.train)


def _noisy(model: TrainedModel, data: TrainingData, strength: float, segment: str | None = None) -> Noisy:
    n = Noisy(model, strength, segment)
    n.segment_of = data.holdout["segment"]
    return n


def test_better_challenger_passes_with_numbers(policy: Policy, data: TrainingData, model: TrainedModel) -> None:
    champion = _noisy(model, data, 0.6)
    verdict = evaluate(policy, model, champion, data.holdout)
    assert verdict.passed
    new, old = verdict.challenger["overall"]["auc"], verdict.champion["overall"]["auc"]  # type: ignore[index]
    assert new > old + 0.02
    assert f"challenger {new:.4f} vs champion {old:.4f}" in verdict.reasons[0]
    assert verdict.failed_segments == ()
    assert set(verdict.challenger["segments"]) == {"prime", "subprime"}


def test_worse_challenger_fails(policy: Policy, data: TrainingData, model: TrainedModel) -> None:
    verdict = evaluate(policy, _noisy(model, data, 0.6), model, data.holdout)
    assert not verdict.passed
    assert "FAIL" in verdict.reasons[0] and "overall auc" in verdict.reasons[0]


def test_regression_in_one_segment_fails_naming_it(policy: Policy, data: TrainingData, model: TrainedModel) -> None:
    champion = _noisy(model, data, 0.8, segment="prime")  # the champion is bad in prime
    challenger = _noisy(model, data, 0.35, segment="subprime")  # the challenger is bad in subprime only
    verdict = evaluate(policy, challenger, champion, data.holdout)
    overall_gain = verdict.challenger["overall"]["auc"] - verdict.champion["overall"]["auc"]  # type: ignore[index]
    assert overall_gain > 0  # better overall ...
    assert not verdict.passed  # ... but worse in one segment
    assert verdict.failed_segments == ("subprime",)
    line = next(r for r in verdict.reasons if r.startswith("segment subprime"))
    assert "FAIL" in line and "regression +" in line
    assert "ok" in next(r for r in verdict.reasons if r.startswith("segment prime"))


def test_no_champion_uses_absolute_checks(policy: Policy, data: TrainingData, model: TrainedModel) -> None:
    verdict = evaluate(policy, model, None, data.holdout)
    assert verdict.passed and verdict.champion is None
    assert verdict.reasons[0] == "no champion: absolute checks only"

    class Inverted:
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return 1 - model.predict(frame)

    bad = evaluate(policy, Inverted(), None, data.holdout)
    assert not bad.passed
    assert any(r.startswith("auc") and r.endswith("FAIL") for r in bad.reasons)


def test_log_loss_gate_prefers_lower(policy_factory: Callable[..., Policy], data: TrainingData, model: TrainedModel) -> None:
    policy = policy_factory(gate={"metric": "log_loss", "min_improvement": 0.0, "max_segment_regression": 0.05})

    class Overconfident:
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return np.clip(np.round(model.predict(frame)), 0.01, 0.99)  # same ranking, worse log loss

    assert evaluate(policy, model, Overconfident(), data.holdout).passed
    reverse = evaluate(policy, Overconfident(), model, data.holdout)
    assert not reverse.passed and "lower is better" in reverse.reasons[0]


def test_min_improvement_is_enforced(policy_factory: Callable[..., Policy], data: TrainingData, model: TrainedModel) -> None:
    policy = policy_factory(gate={"metric": "auc", "min_improvement": 0.5, "max_segment_regression": 0.02})
    verdict = evaluate(policy, model, _noisy(model, data, 0.6), data.holdout)
    assert not verdict.passed and "need >= +0.5000" in verdict.reasons[0]


def test_comparing_the_challenger_with_itself_is_refused(policy: Policy, data: TrainingData, model: TrainedModel) -> None:
    with pytest.raises(ConfigError, match="same object"):
        evaluate(policy, model, model, data.holdout)


def test_binary_metrics_against_sklearn() -> None:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + 0.7 * rng.random(500), 0, 1)
    m = binary_metrics(y, p)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["gini"] == pytest.approx(2 * roc_auc_score(y, p) - 1)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5))
    assert m["log_loss"] == pytest.approx(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)))
    perfect = binary_metrics(np.array([0, 1] * 50), np.array([0.0, 1.0] * 50))
    assert perfect["calibration_error"] == pytest.approx(0, abs=1e-6)
    assert np.isnan(binary_metrics(np.ones(5), np.full(5, 0.9))["auc"])


def test_a_champion_that_cannot_score_is_a_data_error(policy: Policy, data: TrainingData, model: TrainedModel) -> None:
    from components.errors import DataError

    class OldSchema:
        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return frame["income"].to_numpy()  # a feature this policy no longer has

    with pytest.raises(DataError, match="champion cannot score the holdout"):
        evaluate(policy, model, OldSchema(), data.holdout)

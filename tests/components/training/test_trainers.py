"""Trainers: they learn the signal, are reproducible per seed, honour sample weights, reject bad params."""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from components.errors import ConfigError, DataError
from components.policy import Policy
from components.training.datasets import build_training_set
from components.training.trainers import train_model
from tests.components.training.training_synth import frame, frame_factory, policy, policy_factory  # noqa: F401  (fixtures)

pytestmark = pytest.mark.unit

END = pd.Timestamp("2025-02-01", tz="UTC")


@pytest.mark.parametrize("kind", ["sklearn_logreg", "sklearn_hgb"])
def test_sklearn_learns_and_is_reproducible(kind: str, policy_factory: Callable[..., Policy], frame: pd.DataFrame) -> None:
    params = {"max_iter": 30} if kind == "sklearn_hgb" else {}
    policy = policy_factory(trainer={"kind": kind, "seed": 3, "holdout": 0.25, "params": params})
    data = build_training_set(policy, "full", END, source=frame)
    first = train_model(policy, data.train)
    p = first.predict(data.holdout)
    assert p.shape == (len(data.holdout),) and p.dtype == float
    assert ((p >= 0) & (p <= 1)).all()
    assert roc_auc_score(data.holdout["defaulted"], p) > 0.75  # the generator's signal (x1, x2) is learnt
    again = train_model(policy, data.train).predict(data.holdout)
    np.testing.assert_array_equal(p, again)
    assert first.fit_seconds > 0 and first.rows == len(data.train)


def test_predict_accepts_ints_extra_columns_and_unseen_categories(policy: Policy, frame: pd.DataFrame) -> None:
    model = train_model(policy, frame)
    request = frame.head(3).assign(x1=[1, 2, 3], employment=["employed", "martian", None], extra="ignored")
    assert model.predict(request).shape == (3,)


def test_sample_weights_change_the_fit(policy: Policy, frame: pd.DataFrame) -> None:
    plain = train_model(policy, frame).predict(frame)
    weights = np.where(frame["defaulted"] == 1, 5.0, 1.0)  # up-weight positives
    heavy = train_model(policy, frame, weights=weights).predict(frame)
    assert heavy.mean() > plain.mean() + 0.1
    with pytest.raises(DataError, match="3 sample weights"):
        train_model(policy, frame, weights=np.ones(3))


def test_bad_params_and_data_are_user_errors(policy_factory: Callable[..., Policy], frame: pd.DataFrame) -> None:
    bad = policy_factory(trainer={"kind": "sklearn_hgb", "params": {"depth_of_forest": 3}})
    with pytest.raises(ConfigError, match="trainer.params"):
        train_model(bad, frame)
    bad_keras = policy_factory(trainer={"kind": "keras_mlp", "params": {"layers": 3}})
    with pytest.raises(ConfigError, match=r"unknown keys \['layers'\]"):
        train_model(bad_keras, frame)
    policy = policy_factory()
    with pytest.raises(DataError, match="single label class"):
        train_model(policy, frame.assign(defaulted=1))
    with pytest.raises(DataError, match="empty"):
        train_model(policy, frame.head(0))


def test_keras_mlp_learns_and_is_reproducible(policy_factory: Callable[..., Policy], frame: pd.DataFrame) -> None:
    policy = policy_factory(trainer={"kind": "keras_mlp", "seed": 1, "holdout": 0.25, "params": {"epochs": 10, "hidden": [8], "batch_size": 32, "learning_rate": 0.01}})
    data = build_training_set(policy, "full", END, source=frame)
    first = train_model(policy, data.train).predict(data.holdout)
    again = train_model(policy, data.train).predict(data.holdout)
    np.testing.assert_allclose(first, again, rtol=0, atol=1e-6)
    assert first.shape == (len(data.holdout),)
    assert roc_auc_score(data.holdout["defaulted"], first) > 0.7

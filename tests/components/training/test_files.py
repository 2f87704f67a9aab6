"""The train step's model artifact: a folder of skops/.keras files that round-trips and refuses pickles."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.errors import DataError
from components.policy import policy_from_dict
from components.training.files import load_model, save_model
from components.training.trainers import train_model


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "c": rng.choice(list("abc"), n), "y": (x + rng.normal(scale=0.5, size=n) > 0).astype(int)})


def _policy(kind: str, params: dict | None = None):
    return policy_from_dict({"model": "m", "entity": "id", "label": "y", "features": ["x"], "categorical_features": ["c"],
                             "trainer": {"kind": kind, "params": params or {}},
                             "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.8}]})


@pytest.mark.parametrize(("kind", "params"), [("sklearn_hgb", {"max_iter": 20}), ("keras_mlp", {"epochs": 1})])
def test_saved_model_round_trips_without_pickles(kind: str, params: dict, tmp_path: Path) -> None:
    frame = _frame()
    model = train_model(_policy(kind, params), frame)
    save_model(model, tmp_path / "model")
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert "trained_model.json" in files and not [f for f in files if f.endswith((".joblib", ".pkl"))]
    back = load_model(tmp_path / "model")
    assert (back.kind, back.features, back.categorical, back.rows) == (kind, ["x"], ["c"], len(frame))
    np.testing.assert_allclose(back.predict(frame), model.predict(frame), rtol=1e-6)


def test_a_pickle_or_an_untrusted_type_refuses_to_load(tmp_path: Path) -> None:
    import joblib
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    joblib.dump({"kind": "sklearn_logreg"}, tmp_path / "old.joblib")
    with pytest.raises(DataError, match="has no trained_model.json; refusing to load it"):
        load_model(tmp_path / "old.joblib")
    model = train_model(_policy("sklearn_logreg"), _frame())
    save_model(model, tmp_path / "model")
    skops.io.dump(FunctionTransformer(func=os.system), tmp_path / "model" / "pipeline.skops")
    with pytest.raises(DataError, match=r"pipeline.skops needs types outside the allow-list"):
        load_model(tmp_path / "model")

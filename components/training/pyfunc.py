"""The MLflow pyfunc wrappers behind the model contract.

Every registered model is a pyfunc whose ``predict(DataFrame)`` returns a 1-D numpy
array of P(label = 1). The fitted objects are artifacts (a joblib-pickled scikit-learn
pipeline; for Keras, a joblib-pickled preprocessor plus a ``.keras`` file).

This file is self-contained on purpose (it imports only mlflow, numpy, pandas, joblib
and keras): it is logged as "model code" (MLflow models-from-code), so loading
``models:/<name>@champion`` in a fresh process, e.g. a KServe predictor, needs no
driftloop install. :func:`model_code` returns the file's text plus the one line that
names the wrapper to use. MLflow is imported at the top because the wrappers subclass
``PythonModel``; import this module only where a model is logged or loaded.

>>> frame = prepare_frame(pd.DataFrame({"x": [1, None], "c": [3, "a"]}), ["x"], ["c"])
>>> frame.dtypes.astype(str).tolist(), frame["c"].tolist()
(['float64', 'object'], ['3', 'a'])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

_KERAS_BATCH = 65536


def prepare_frame(frame: pd.DataFrame, features: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input columns with fixed types: numeric as float64, categorical as str."""
    missing = [c for c in (*features, *categorical) if c not in frame.columns]
    if missing:
        raise ValueError(f"input lacks columns {missing}; the model needs {[*features, *categorical]}")
    out = pd.DataFrame(index=frame.index)
    for column in features:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in categorical:
        out[column] = frame[column].astype(object).where(frame[column].notna(), "missing").astype(str)
    return out


class _ProbaModel(PythonModel):  # type: ignore[misc]
    features: list[str]
    categorical: list[str]

    def _columns(self, context: Any) -> None:
        config = context.model_config or {}
        self.features = list(config.get("features", []))
        self.categorical = list(config.get("categorical_features", []))


class SklearnProbaModel(_ProbaModel):
    """A scikit-learn pipeline; ``predict`` returns ``predict_proba(X)[:, 1]``."""

    def load_context(self, context: Any) -> None:
        import joblib

        self._columns(context)
        self.pipeline = joblib.load(context.artifacts["pipeline"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        x = prepare_frame(pd.DataFrame(model_input), self.features, self.categorical)
        return np.asarray(self.pipeline.predict_proba(x)[:, 1], dtype=float)


class KerasProbaModel(_ProbaModel):
    """A scikit-learn preprocessor feeding a Keras MLP with one sigmoid output."""

    def load_context(self, context: Any) -> None:
        import joblib
        import keras

        self._columns(context)
        self.preprocessor = joblib.load(context.artifacts["preprocessor"])
        self.network = keras.models.load_model(context.artifacts["keras_model"], compile=False)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        x = prepare_frame(pd.DataFrame(model_input), self.features, self.categorical)
        return keras_predict(self.network, self.preprocessor, x)


def keras_predict(network: Any, preprocessor: Any, frame: pd.DataFrame) -> np.ndarray:
    """P(label = 1) from a Keras network, in batches (a direct call, no ``predict`` overhead)."""
    x = np.asarray(preprocessor.transform(frame), dtype=np.float32)
    if len(x) == 0:
        return np.zeros(0)
    parts = [np.asarray(network(x[i : i + _KERAS_BATCH], training=False)).reshape(-1) for i in range(0, len(x), _KERAS_BATCH)]
    return np.concatenate(parts).astype(float)


def model_code(wrapper: str) -> str:
    """This file's source plus ``set_model(<wrapper>())``: the code MLflow logs with the model."""
    if wrapper not in ("SklearnProbaModel", "KerasProbaModel"):
        raise ValueError(f"unknown wrapper {wrapper!r}")
    source = Path(__file__).read_text()
    return f"{source}\n\nimport mlflow.models\n\nmlflow.models.set_model({wrapper}())\n"

"""Seeded trainers behind one contract: ``predict(DataFrame) -> P(label = 1)``.

``policy.trainer.kind`` picks the model:

- ``sklearn_hgb``: HistGradientBoostingClassifier, ``sklearn_logreg``: LogisticRegression,
  each in a Pipeline after a ColumnTransformer (median imputation + scaling for numeric
  features, one-hot for categorical ones);
- ``keras_mlp``: the same preprocessing feeding a small Keras MLP (``params.hidden``
  layer sizes, ``params.epochs``), seeded with ``keras.utils.set_random_seed`` and
  deterministic TensorFlow ops.

Same data and seed give the same predictions. Sample weights (cohort up-weighting) are
passed to ``fit``. :meth:`TrainedModel.save_pyfunc` saves the model as an MLflow pyfunc with a
signature and an input example (see :mod:`components.training.pyfunc`).

>>> import pandas as pd
>>> from components.policy import policy_from_dict
>>> policy = policy_from_dict({"model": "m", "entity": "id", "label": "y", "features": ["x"],
...     "trainer": {"kind": "sklearn_logreg"},
...     "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.8}]})
>>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
>>> model = train_model(policy, frame)
>>> p = model.predict(frame)
>>> p.shape, bool(p[3] > 0.5 > p[0])
((4,), True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.errors import ConfigError, DataError
from components.policy import Policy

KERAS_DEFAULTS: dict[str, Any] = {"epochs": 8, "hidden": [32, 16], "batch_size": 256, "learning_rate": 1e-3}


@dataclass
class TrainedModel:
    """A fitted model and what it needs to predict and to be logged."""

    kind: str
    features: list[str]
    categorical: list[str]
    seed: int
    params: dict[str, Any]
    pipeline: Any = None  # scikit-learn Pipeline (sklearn kinds)
    preprocessor: Any = None  # fitted ColumnTransformer (keras)
    network: Any = None  # keras.Model (keras)
    fit_seconds: float = 0.0
    rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """P(label = 1) for each row, a 1-D float array."""
        from components.training.pyfunc import keras_predict, prepare_frame

        x = prepare_frame(frame, self.features, self.categorical)
        if self.kind == "keras_mlp":
            return keras_predict(self.network, self.preprocessor, x)
        return np.asarray(self.pipeline.predict_proba(x)[:, 1], dtype=float)

    def input_example(self, frame: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
        """A few rows typed as the model expects them (float numerics, string categories)."""
        from components.training.pyfunc import prepare_frame

        return prepare_frame(frame.head(rows), self.features, self.categorical).reset_index(drop=True)

    def signature(self, example: pd.DataFrame) -> Any:
        """Input schema: categorical columns as strings, numeric ones as Any.

        Numeric columns are typed Any because MLflow refuses to cast int64 to float64 and a
        JSON request carries ``3`` as an integer; the wrapper coerces them to float itself.
        """
        from mlflow.models import ModelSignature, infer_signature
        from mlflow.types.schema import AnyType, ColSpec, Schema

        inputs = Schema([*(ColSpec(AnyType(), c) for c in self.features), *(ColSpec("string", c) for c in self.categorical)])
        return ModelSignature(inputs=inputs, outputs=infer_signature(example, self.predict(example)).outputs)

    def save_pyfunc(self, path: Path, example_source: pd.DataFrame) -> Path:
        """Save as an MLflow pyfunc model directory (signature, input example, pinned requirements).

        No MLflow run or tracking URI is involved; the registry uploads the directory.
        """
        import tempfile

        import mlflow
        import sklearn
        import skops
        import skops.io

        from components.training.pyfunc import model_code

        example = self.input_example(example_source)
        signature = self.signature(example)
        with tempfile.TemporaryDirectory(prefix="driftloop-model-") as tmp:
            folder = Path(tmp)
            requirements = [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}", f"numpy=={np.__version__}", f"skops=={skops.__version__}"]
            # skops and native .keras: files that load without running code (no pickle, no joblib)
            if self.kind == "keras_mlp":
                import keras
                import tensorflow as tf

                skops.io.dump(self.preprocessor, folder / "preprocessor.skops")
                self.network.save(folder / "network.keras")
                artifacts = {"preprocessor": str(folder / "preprocessor.skops"), "keras_model": str(folder / "network.keras")}
                wrapper = "KerasProbaModel"
                requirements += [f"keras=={keras.__version__}", f"tensorflow-cpu=={tf.__version__}"]
            else:
                skops.io.dump(self.pipeline, folder / "pipeline.skops")
                artifacts = {"pipeline": str(folder / "pipeline.skops")}
                wrapper = "SklearnProbaModel"
            code = folder / "driftloop_model.py"
            code.write_text(model_code(wrapper))
            mlflow.pyfunc.save_model(
                path=str(path),
                python_model=str(code),
                artifacts=artifacts,
                model_config={"features": self.features, "categorical_features": self.categorical, "kind": self.kind},
                signature=signature,
                input_example=example,
                pip_requirements=requirements,  # explicit: MLflow's inference would reload the model in a subprocess
            )
        return path


def train_model(policy: Policy, train: pd.DataFrame, weights: np.ndarray | None = None) -> TrainedModel:
    """Fit ``policy.trainer.kind`` on ``train`` (policy features + label), seeded by ``policy.trainer.seed``."""
    if train.empty:
        raise DataError("the training set is empty", fix="choose a window that contains labelled rows")
    y = train[policy.label]
    if y.isna().any():
        raise DataError(f"label {policy.label!r} has {int(y.isna().sum())} missing values in the training set", fix="drop unlabelled rows first (build_training_set does)")
    y = y.astype(int).to_numpy()
    if len(np.unique(y)) < 2:
        raise DataError(f"the training set has a single label class ({policy.label}={int(y[0])})", fix="use a longer window or check the label column")
    if weights is not None and len(weights) != len(train):
        raise DataError(f"{len(weights)} sample weights for {len(train)} training rows", fix="pass one weight per row")
    from components.training.pyfunc import prepare_frame

    kind, seed, params = policy.trainer.kind, policy.trainer.seed, dict(policy.trainer.params)
    model = TrainedModel(kind=kind, features=list(policy.features), categorical=list(policy.categorical_features), seed=seed, params=params, rows=len(train))
    x = prepare_frame(train, model.features, model.categorical)
    started = time.perf_counter()
    if kind == "keras_mlp":
        model.preprocessor, model.network = _fit_keras(model, x, y, weights)
    else:
        model.pipeline = _sklearn_pipeline(model)
        model.pipeline.fit(x, y, model__sample_weight=weights)
    model.fit_seconds = time.perf_counter() - started
    return model


def _preprocessor(features: list[str], categorical: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts: list[tuple[str, Any, list[str]]] = []
    if features:
        parts.append(("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), features))
    if categorical:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=5), categorical))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _sklearn_pipeline(model: TrainedModel) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    try:
        if model.kind == "sklearn_hgb":
            estimator: Any = HistGradientBoostingClassifier(random_state=model.seed, **{"max_iter": 200, **model.params})
        else:
            estimator = LogisticRegression(random_state=model.seed, **{"max_iter": 1000, **model.params})
    except TypeError as exc:
        raise ConfigError(f"trainer.params: {exc}", fix=f"use parameters of the {model.kind} estimator") from None
    return Pipeline([("prep", _preprocessor(model.features, model.categorical)), ("model", estimator)])


def _fit_keras(model: TrainedModel, x: pd.DataFrame, y: np.ndarray, weights: np.ndarray | None) -> tuple[Any, Any]:
    unknown = sorted(set(model.params) - set(KERAS_DEFAULTS))
    if unknown:
        raise ConfigError(f"trainer.params has unknown keys {unknown} for keras_mlp", fix=f"use {sorted(KERAS_DEFAULTS)}")
    params = {**KERAS_DEFAULTS, **model.params}
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(model.seed)
    tf.config.experimental.enable_op_determinism()  # same seed + data -> same weights
    preprocessor = _preprocessor(model.features, model.categorical)
    matrix = np.asarray(preprocessor.fit_transform(x), dtype=np.float32)
    layers: list[Any] = [keras.Input(shape=(matrix.shape[1],))]
    layers += [keras.layers.Dense(int(units), activation="relu") for units in params["hidden"]]
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    network = keras.Sequential(layers)
    network.compile(optimizer=keras.optimizers.Adam(learning_rate=float(params["learning_rate"])), loss="binary_crossentropy")
    network.fit(matrix, y.astype(np.float32), sample_weight=weights, epochs=int(params["epochs"]), batch_size=int(params["batch_size"]), shuffle=True, verbose=0)
    return preprocessor, network

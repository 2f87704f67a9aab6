"""The MLflow pyfunc wrappers behind the model contract.

Every registered model is a pyfunc whose ``predict(DataFrame)`` returns a 1-D numpy
array of P(label = 1). The fitted objects are artifacts that cannot run code when read:
a scikit-learn pipeline in skops format (loaded only when every type it names is in
:data:`TRUSTED_TYPES` or skops' own safe set), for Keras a skops preprocessor plus a
native ``.keras`` file loaded with ``safe_mode=True`` (no lambda layers, no pickles).

This file is self-contained on purpose (it imports only mlflow, numpy, pandas, skops
and keras): it is logged as "model code" (MLflow models-from-code), so loading
``models:/<name>@champion`` in a fresh process needs no driftloop install. driftloop's
own loaders (:meth:`components.registry.ModelRegistry.load`, the predictor) never run
that logged copy: they check the artifacts' digests and build the wrapper from
:func:`wrapper_from_files` of the installed code. :func:`model_code` returns the file's text plus the one line that
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

# Types beyond skops' built-in safe set that driftloop's own pipelines contain; anything
# else in a file refuses to load (skops would otherwise build it, and a crafted type runs code).
TRUSTED_TYPES = frozenset({"numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"})
WRAPPERS = {"pipeline": "SklearnProbaModel", "keras_model": "KerasProbaModel"}


class UntrustedArtifactError(ValueError):
    """A model file that would need code or types outside the allow-list to load."""


def load_sklearn(path: str | Path) -> Any:
    """A scikit-learn object from a skops file, refused unless every type it needs is trusted.

    >>> import tempfile, skops.io
    >>> from sklearn.linear_model import LogisticRegression
    >>> path = Path(tempfile.mkdtemp()) / "m.skops"
    >>> skops.io.dump(LogisticRegression().fit([[0], [1]], [0, 1]), path)
    >>> type(load_sklearn(path)).__name__
    'LogisticRegression'
    """
    import skops.io

    path = Path(path)
    if path.suffix != ".skops":
        raise UntrustedArtifactError(f"{path.name}: only .skops scikit-learn files load (pickle and joblib files can run code)")
    untrusted = skops.io.get_untrusted_types(file=path)
    unknown = sorted(set(untrusted) - TRUSTED_TYPES)
    if unknown:
        raise UntrustedArtifactError(f"{path.name} needs types outside the allow-list: {unknown}")
    return skops.io.load(path, trusted=sorted(untrusted))


def load_keras(path: str | Path) -> Any:
    """A Keras model from a native ``.keras`` file, loaded with ``safe_mode=True`` (no lambdas, no pickles)."""
    import keras

    path = Path(path)
    if path.suffix != ".keras":
        raise UntrustedArtifactError(f"{path.name}: only native .keras files load (HDF5/SavedModel can carry code)")
    return keras.models.load_model(path, compile=False, safe_mode=True)


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

    def load_context(self, context: Any) -> None:
        self.load_files(context.artifacts, context.model_config or {})

    def load_files(self, artifacts: dict[str, str], config: dict[str, Any]) -> None:
        """Read the artifacts (name -> local path) with the safe loaders; ``config`` is the model config."""
        self.features = list(config.get("features", []))
        self.categorical = list(config.get("categorical_features", []))
        self._load(artifacts)

    def _load(self, artifacts: dict[str, str]) -> None:
        raise NotImplementedError


class SklearnProbaModel(_ProbaModel):
    """A scikit-learn pipeline; ``predict`` returns ``predict_proba(X)[:, 1]``."""

    def _load(self, artifacts: dict[str, str]) -> None:
        self.pipeline = load_sklearn(artifacts["pipeline"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        x = prepare_frame(pd.DataFrame(model_input), self.features, self.categorical)
        return np.asarray(self.pipeline.predict_proba(x)[:, 1], dtype=float)


class KerasProbaModel(_ProbaModel):
    """A scikit-learn preprocessor feeding a Keras MLP with one sigmoid output."""

    def _load(self, artifacts: dict[str, str]) -> None:
        self.preprocessor = load_sklearn(artifacts["preprocessor"])
        self.network = load_keras(artifacts["keras_model"])

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


def wrapper_from_files(artifacts: dict[str, str], config: dict[str, Any]) -> _ProbaModel:
    """The wrapper for these artifacts (by their names), loaded with the safe loaders; no logged code runs."""
    names = [name for name in WRAPPERS if name in artifacts]
    if len(names) != 1:
        raise UntrustedArtifactError(f"artifacts {sorted(artifacts)} match no driftloop model (expected one of {sorted(WRAPPERS)})")
    wrapper: _ProbaModel = globals()[WRAPPERS[names[0]]]()
    wrapper.load_files(artifacts, config)
    return wrapper


def model_code(wrapper: str) -> str:
    """This file's source plus ``set_model(<wrapper>())``: the code MLflow logs with the model."""
    if wrapper not in ("SklearnProbaModel", "KerasProbaModel"):
        raise ValueError(f"unknown wrapper {wrapper!r}")
    source = Path(__file__).read_text()
    return f"{source}\n\nimport mlflow.models\n\nmlflow.models.set_model({wrapper}())\n"

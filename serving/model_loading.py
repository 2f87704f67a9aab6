"""Loading the model a predictor serves: resolve a registry URI to a version once, load it, warm it up.

The version comes from :meth:`components.registry.ModelRegistry.resolve` (the one version
resolver), so an alias moved later does not change a running server. The model loads
through :meth:`components.registry.ModelRegistry.load`: every file checked against the
SHA-256 digests recorded at registration, skops/.keras files read by the safe loaders,
no pickle and no Python file from the registry executed. The request schema
comes from the model's own config (driftloop models) or its MLflow signature.

>>> class Pyfunc:
...     model_config = {"features": ["x1", "x2"], "categorical_features": ["segment"]}
>>> schema_of(Pyfunc()).names
['x1', 'x2', 'segment']
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Any

from components.errors import ConfigError
from components.model_uri import parse_model_uri
from serving.schema import FeatureSchema


def _registry(tracking_uri: str | None) -> Any:
    from components.registry import ModelRegistry
    from components.settings import Settings

    settings = Settings.from_env()
    if tracking_uri:
        settings = replace(settings, mlflow_tracking_uri=tracking_uri)
    return ModelRegistry(settings)


def resolve_version(uri: str, tracking_uri: str | None = None) -> str:
    """The registry version a ``models:/`` URI points at now (ConfigError if none, ServiceUnavailable if MLflow is down)."""
    return str(_registry(tracking_uri).resolve(parse_model_uri(uri).name, uri).version)


def schema_of(pyfunc_model: Any) -> FeatureSchema:
    """Feature schema from the model's config (driftloop models) or its signature."""
    config = getattr(pyfunc_model, "model_config", None) or {}
    if config.get("features"):
        return FeatureSchema(tuple(config["features"]), tuple(config.get("categorical_features", [])))
    input_schema = pyfunc_model.metadata.get_input_schema()
    if input_schema is None:
        raise ConfigError("the model has no signature and no feature list", fix="log it with a signature or pass --policy")
    return FeatureSchema.from_signature(input_schema)


@dataclass(frozen=True)
class LoadedModel:
    """A registry version in memory: its name, version number and pyfunc (``predict(df) -> P(1)``)."""

    name: str
    version: str
    model: Any


def load_model(uri: str, tracking_uri: str | None = None) -> LoadedModel:
    """Resolve ``uri`` to a version, load it digest-checked (DataError on a mismatch) and predict once on its input example."""
    registry = _registry(tracking_uri)
    name = parse_model_uri(uri).name
    version = str(registry.resolve(name, uri).version)
    model = registry.load(name, version)
    if os.environ.get("OMP_NUM_THREADS") == "1":
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # the model's libraries are loaded now
    warm_up(model)
    return LoadedModel(name, version, model)


def warm_up(model: Any) -> None:
    """Predict once on the logged input example.

    The first prediction pays lazy initialisation (about 150 ms for a scikit-learn
    pipeline, seconds for Keras); without this it lands in a canary's latency p95.
    """
    try:
        example = model.input_example
        if example is not None:
            model.predict(example)
    except Exception as exc:  # a model without a usable example still serves
        logging.getLogger(__name__).warning("warm-up prediction skipped: %s", exc)

"""Registry URIs: ``models:/<name>@<alias>`` and ``models:/<name>/<version>``, parsed once.

Everything that names a model version (the predictor's ``--model-uri``, the canary's
challenger, the monitor's ``model_version`` parameter, the CLI) goes through
:func:`parse_model_uri` / :func:`model_uri` here and resolves the number with
:meth:`components.registry.ModelRegistry.resolve`.

>>> parse_model_uri("models:/churn@champion")
ModelRef(name='churn', alias='champion', version=None)
>>> parse_model_uri("models:/churn/3").version
'3'
>>> model_uri("churn", "challenger"), model_uri("churn", 4), model_uri("churn", "models:/churn/2")
('models:/churn@challenger', 'models:/churn/4', 'models:/churn/2')
>>> parse_model_uri("s3://bucket/model")
Traceback (most recent call last):
...
components.errors.ConfigError: model URI 's3://bucket/model' is not a registry URI (fix: use models:/<name>@<alias> or models:/<name>/<version>)
"""

from __future__ import annotations

from typing import NamedTuple

from components.errors import ConfigError

_FIX = "use models:/<name>@<alias> or models:/<name>/<version>"


class ModelRef(NamedTuple):
    """A parsed registry URI: exactly one of ``alias`` and ``version`` is set."""

    name: str
    alias: str | None
    version: str | None


def parse_model_uri(uri: str) -> ModelRef:
    """Split a registry URI into (name, alias, version); anything else is a ConfigError."""
    if not uri.startswith("models:/"):
        raise ConfigError(f"model URI {uri!r} is not a registry URI", fix=_FIX)
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if name and alias and "/" not in name:
            return ModelRef(name, alias, None)
    elif rest.count("/") == 1:
        name, version = rest.split("/")
        if name and version.isdigit():
            return ModelRef(name, None, version)
    raise ConfigError(f"model URI {uri!r} is malformed", fix=_FIX)


def model_uri(model: str, ref: str | int) -> str:
    """The registry URI of ``ref``: an alias, a version number, or already a URI of ``model``.

    >>> model_uri("fraud", "models:/credit@champion")
    Traceback (most recent call last):
    ...
    components.errors.ConfigError: model URI 'models:/credit@champion' names model 'credit', expected 'fraud' (fix: use models:/fraud@<alias> or models:/fraud/<version>)
    """
    text = str(ref).strip()
    if not text:
        raise ConfigError(f"an empty model reference for {model!r}", fix="name an alias (champion, challenger) or a version number")
    if text.startswith("models:/"):
        name = parse_model_uri(text).name
        if name != model:
            raise ConfigError(f"model URI {text!r} names model {name!r}, expected {model!r}", fix=f"use models:/{model}@<alias> or models:/{model}/<version>")
        return text
    return f"models:/{model}/{text}" if text.isdigit() else f"models:/{model}@{text}"

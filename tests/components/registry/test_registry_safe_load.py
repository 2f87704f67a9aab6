"""Model artifacts that cannot run code: skops/.keras files, digests recorded at registration and checked before load."""
# ruff: noqa: F811  (pytest fixtures imported from a helper module are redefined as arguments)

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from components.errors import DataError
from components.registry import ModelRegistry
from components.registry.artifacts import ALLOW_UNVERIFIED_ENV, DIGEST_TAG, artifact_digests
from components.settings import Settings
from components.training.pyfunc import UntrustedArtifactError, load_keras, load_sklearn
from tests.components.registry.mlflow_fixtures import Trained, trained  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    return ModelRegistry(Settings(workdir=tmp_path_factory.mktemp("registry-safe")))


def _registered(registry: ModelRegistry, trained: Trained, name: str) -> tuple[Trained, int, Path]:
    t = replace(trained, policy=trained.policy.model_copy(update={"model": name}))
    info = registry.register(t.policy, t.model, t.data, t.verdict)
    folder = Path(unquote(urlparse(info.source).path))  # the local artifact store
    assert folder.is_dir(), info.source
    return t, info.version, folder


def _evil_skops(path: Path) -> None:
    """A skops file whose pipeline would call os.system: a type outside the allow-list."""
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    skops.io.dump(FunctionTransformer(func=os.system), path)


def test_model_files_are_skops_with_a_digest_for_each(registry: ModelRegistry, trained: Trained) -> None:
    t, version, folder = _registered(registry, trained, "safe-files")
    names = {p.name for p in folder.rglob("*") if p.is_file()}
    assert "pipeline.skops" in names
    assert not [n for n in names if n.endswith((".joblib", ".pkl", ".pickle"))]
    recorded = json.loads(registry._require("safe-files", version).tags[DIGEST_TAG])
    assert recorded == artifact_digests(folder)
    rows = t.data.holdout.head(20)
    np.testing.assert_allclose(registry.load("safe-files", version).predict(rows), t.model.predict(rows))


def test_a_changed_artifact_refuses_to_load(registry: ModelRegistry, trained: Trained) -> None:
    _, version, folder = _registered(registry, trained, "tampered")
    _evil_skops(folder / "artifacts" / "pipeline.skops")
    with pytest.raises(DataError, match=r"artifacts/pipeline.skops does not match the SHA-256 recorded at registration"):
        registry.load("tampered", version)


def test_an_untrusted_type_refuses_to_load_even_with_a_matching_digest(registry: ModelRegistry, trained: Trained) -> None:
    _, version, folder = _registered(registry, trained, "retagged")
    _evil_skops(folder / "artifacts" / "pipeline.skops")
    # a writer who can also re-tag the version still cannot make it run code
    registry._client().set_model_version_tag("retagged", str(version), DIGEST_TAG, json.dumps(artifact_digests(folder)))
    with pytest.raises(DataError, match=r"pipeline.skops needs types outside the allow-list: \[.*system"):
        registry.load("retagged", version)


def test_a_version_without_digests_loads_only_when_explicitly_trusted(registry: ModelRegistry, trained: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    t, version, _ = _registered(registry, trained, "untagged")
    registry._client().delete_model_version_tag("untagged", str(version), DIGEST_TAG)
    monkeypatch.delenv(ALLOW_UNVERIFIED_ENV, raising=False)
    with pytest.raises(DataError, match=f"has no artifact digests.*{ALLOW_UNVERIFIED_ENV}=true"):
        registry.load("untagged", version)
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "true")
    rows = t.data.holdout.head(5)
    np.testing.assert_allclose(registry.load("untagged", version).predict(rows), t.model.predict(rows))


def test_safe_loaders_refuse_pickles_and_foreign_formats(tmp_path: Path) -> None:
    import joblib

    joblib.dump({"a": 1}, tmp_path / "model.joblib")
    with pytest.raises(UntrustedArtifactError, match="only .skops"):
        load_sklearn(tmp_path / "model.joblib")
    with pytest.raises(UntrustedArtifactError, match="only native .keras"):
        load_keras(tmp_path / "model.h5")
    _evil_skops(tmp_path / "evil.skops")
    with pytest.raises(UntrustedArtifactError, match="outside the allow-list"):
        load_sklearn(tmp_path / "evil.skops")


def test_keras_lambda_layers_refuse_to_load(tmp_path: Path) -> None:
    import keras

    network = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Lambda(lambda x: x * 2)])
    network.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="(?i)lambda"):
        load_keras(tmp_path / "lambda.keras")

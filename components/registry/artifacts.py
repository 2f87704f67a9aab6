"""What a registered version carries, read back: the model itself, baseline metrics, reference sample, profiles.

A model loads only after every file of it matches the SHA-256 digest recorded at
registration (version tag :data:`DIGEST_TAG`) and only through the safe loaders of
:mod:`components.training.pyfunc` (skops with an allow-list, ``.keras`` in safe mode);
the Python file MLflow logs with the model is never executed here.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "MLmodel").write_text("flavors: {}")
>>> digests = artifact_digests(folder)
>>> list(digests), digests["MLmodel"][:12]
(['MLmodel'], '84c4260ca2ef')
>>> verify_digests(folder, digests, "churn version 3")
>>> _ = (folder / "MLmodel").write_text("flavors: {x: 1}")
>>> verify_digests(folder, digests, "churn version 3")
Traceback (most recent call last):
...
components.errors.DataError: churn version 3: MLmodel does not match the SHA-256 recorded at registration; refusing to load it (fix: ...)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from components.errors import DataError
from components.registry.store import (
    BASELINE_FILE,
    CHAMPION,
    PROFILE_FILE,
    REFERENCE_FILE,
    MlflowStore,
)

DIGEST_TAG = "driftloop.artifact_sha256"  # version tag: {relative path: sha256} of the model's files
PROFILE_DIGEST_TAG = "driftloop.reference_profile_sha256"  # version tag: sha256 of driftloop/REFERENCE_PROFILE_FILE
REFERENCE_PROFILE_FILE = "reference_profile.npz"  # components.monitor.profile.ReferenceProfile of the reference sample
ALLOW_UNVERIFIED_ENV = "DRIFTLOOP_ALLOW_UNVERIFIED_MODELS"  # "true": load versions without digests via MLflow (runs their code)
_REREGISTER = "register the model again with 'driftloop train' (it records digests and writes safe files)"


def artifact_digests(folder: str | Path) -> dict[str, str]:
    """``{relative path: SHA-256 hex}`` of every file under ``folder``, sorted by path."""
    root = Path(folder)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def verify_digests(folder: str | Path, expected: dict[str, str], what: str) -> None:
    """Raise DataError unless every file of ``expected`` is in ``folder`` with that digest.

    Files not recorded (MLflow adds ``registered_model_meta`` when a model is loaded by
    name) are allowed but never read: the loader reads only paths named in ``MLmodel``,
    which is itself checked.
    """
    actual = artifact_digests(folder)
    for name, digest in expected.items():
        if name not in actual:
            raise DataError(f"{what}: {name} recorded at registration is missing; refusing to load it", fix=_REREGISTER)
        if actual[name] != digest:
            raise DataError(f"{what}: {name} does not match the SHA-256 recorded at registration; refusing to load it",
                            fix=f"the file changed after registration: restore it or {_REREGISTER}")


class VerifiedModel:
    """A driftloop model built from digest-checked files: ``predict(DataFrame) -> P(label = 1)`` plus its metadata."""

    def __init__(self, wrapper: Any, metadata: Any, input_example: Any) -> None:
        self._wrapper = wrapper
        self.metadata = metadata
        self.model_config = dict(metadata.flavors["python_function"].get("config") or {})
        self.input_example = input_example

    def predict(self, frame: pd.DataFrame) -> Any:
        """P(label = 1) for each row."""
        return self._wrapper.predict(None, frame)


def load_verified(folder: str | Path, digests: dict[str, str], what: str) -> VerifiedModel:
    """Check ``folder`` against ``digests``, then build the model with the safe loaders only."""
    from mlflow.models import Model

    from components.training.pyfunc import UntrustedArtifactError, wrapper_from_files

    verify_digests(folder, digests, what)
    root = Path(folder)
    metadata = Model.load(str(root / "MLmodel"))  # YAML, parsed safely
    flavor = metadata.flavors.get("python_function") or {}
    artifacts = {name: str(root / spec["path"]) for name, spec in (flavor.get("artifacts") or {}).items()}
    unrecorded = sorted(spec["path"] for spec in (flavor.get("artifacts") or {}).values() if spec["path"] not in digests)
    if unrecorded:
        raise DataError(f"{what}: artifacts {unrecorded} have no digest recorded at registration; refusing to load it", fix=_REREGISTER)
    try:
        wrapper = wrapper_from_files(artifacts, dict(flavor.get("config") or {}))
    except UntrustedArtifactError as exc:
        raise DataError(f"{what}: {exc}; refusing to load it", fix=_REREGISTER) from None
    example = None
    if metadata.saved_input_example_info is not None:
        example = metadata.load_input_example(str(root))
    return VerifiedModel(wrapper, metadata, example)


class Artifacts(MlflowStore):
    """Load a version's model and the driftloop artifacts logged with it."""

    def load(self, model: str, alias_or_version: str | int = CHAMPION) -> Any:
        """The model (``predict(DataFrame) -> P(label = 1)``) of an alias or version number, digest-checked.

        A version without recorded digests (registered before them, or by another tool) is
        refused unless ``DRIFTLOOP_ALLOW_UNVERIFIED_MODELS=true``; then MLflow loads it and
        runs whatever code it carries.
        """
        import mlflow

        ref = str(alias_or_version)
        info = self._require(model, int(ref)) if ref.isdigit() else self.get(model, ref)
        if info is None:
            raise DataError(f"model {model!r} has no {ref!r} version", fix=f"list versions with 'driftloop registry list --model {model}'")
        source = info.source
        if source.startswith("models:/m-"):  # an MLflow 3 logged model (registered by other tools)
            with self._service():
                source = self._client().get_logged_model(source.removeprefix("models:/")).artifact_location
        what = f"model {model!r} version {info.version}"
        digests = json.loads(info.tags[DIGEST_TAG]) if info.tags.get(DIGEST_TAG) else None
        if digests is None and os.environ.get(ALLOW_UNVERIFIED_ENV, "").lower() not in ("1", "true"):
            raise DataError(f"{what} has no artifact digests (tag {DIGEST_TAG}); refusing to load it", fix=f"{_REREGISTER}, or set {ALLOW_UNVERIFIED_ENV}=true to trust it")
        with self._service(), tempfile.TemporaryDirectory(prefix="driftloop-load-") as folder:
            path = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=folder, tracking_uri=self.uri)
            if digests is None:
                return mlflow.pyfunc.load_model(path)  # explicitly trusted: runs the model's own code
            return load_verified(path, digests, what)  # reads every artifact into memory

    def baseline_metrics(self, model: str, alias: str = CHAMPION) -> dict[str, Any]:
        """``{"overall": {metric: value}, "segments": {name: {...}}}`` measured at registration."""
        return json.loads(self._artifact(model, alias, BASELINE_FILE))

    def reference_sample(self, model: str, alias: str = CHAMPION) -> pd.DataFrame:
        """The holdout sample with predictions and labels logged with the version."""
        return pd.read_parquet(io.BytesIO(self._artifact(model, alias, REFERENCE_FILE)))

    def profile(self, model: str, alias: str = CHAMPION) -> dict[str, Any]:
        """The per-feature profile of the training set."""
        return json.loads(self._artifact(model, alias, PROFILE_FILE))

    def reference_profile(self, model: str, alias: str = CHAMPION) -> Any:
        """The reference sample's :class:`~components.monitor.profile.ReferenceProfile` built at registration, digest-checked.

        None when the version has none (registered before profiles were): the monitors then
        profile the reference rows themselves.
        """
        from components.monitor.profile import load_profile

        info = self.get(model, alias) if not str(alias).isdigit() else self._require(model, int(alias))
        digest = (info.tags or {}).get(PROFILE_DIGEST_TAG) if info is not None else None
        if not digest:
            return None
        with tempfile.TemporaryDirectory(prefix="driftloop-profile-") as folder:
            path = Path(folder) / REFERENCE_PROFILE_FILE
            path.write_bytes(self._artifact(model, alias, REFERENCE_PROFILE_FILE))
            return load_profile(path, digest)

    def _artifact(self, model: str, alias: str, name: str) -> bytes:
        import mlflow

        info = self.get(model, alias) if not str(alias).isdigit() else self._require(model, int(alias))
        if info is None:
            raise DataError(f"model {model!r} has no {alias!r} version", fix=f"register one with 'driftloop train --policy {model}'")
        with self._service(), tempfile.TemporaryDirectory(prefix="driftloop-artifact-") as folder:
            path = mlflow.artifacts.download_artifacts(run_id=info.run_id, artifact_path=f"driftloop/{name}", dst_path=folder, tracking_uri=self.uri)
            return Path(path).read_bytes()

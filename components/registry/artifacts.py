"""What a registered version carries, read back: the model itself, baseline metrics, reference sample, profile."""

from __future__ import annotations

import io
import json
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


class Artifacts(MlflowStore):
    """Load a version's model and the driftloop artifacts logged with it."""

    def load(self, model: str, alias_or_version: str | int = CHAMPION) -> Any:
        """The pyfunc model (``predict(DataFrame) -> P(label = 1)``) of an alias or version number."""
        import mlflow

        ref = str(alias_or_version)
        info = self._require(model, int(ref)) if ref.isdigit() else self.get(model, ref)
        if info is None:
            raise DataError(f"model {model!r} has no {ref!r} version", fix=f"list versions with 'driftloop registry list --model {model}'")
        source = info.source
        if source.startswith("models:/m-"):  # an MLflow 3 logged model (registered by other tools)
            with self._service():
                source = self._client().get_logged_model(source.removeprefix("models:/")).artifact_location
        with self._service(), tempfile.TemporaryDirectory(prefix="driftloop-load-") as folder:
            path = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=folder, tracking_uri=self.uri)
            return mlflow.pyfunc.load_model(path)  # the wrappers read every artifact into memory on load

    def baseline_metrics(self, model: str, alias: str = CHAMPION) -> dict[str, Any]:
        """``{"overall": {metric: value}, "segments": {name: {...}}}`` measured at registration."""
        return json.loads(self._artifact(model, alias, BASELINE_FILE))

    def reference_sample(self, model: str, alias: str = CHAMPION) -> pd.DataFrame:
        """The holdout sample with predictions and labels logged with the version."""
        return pd.read_parquet(io.BytesIO(self._artifact(model, alias, REFERENCE_FILE)))

    def profile(self, model: str, alias: str = CHAMPION) -> dict[str, Any]:
        """The per-feature profile of the training set."""
        return json.loads(self._artifact(model, alias, PROFILE_FILE))

    def _artifact(self, model: str, alias: str, name: str) -> bytes:
        import mlflow

        info = self.get(model, alias) if not str(alias).isdigit() else self._require(model, int(alias))
        if info is None:
            raise DataError(f"model {model!r} has no {alias!r} version", fix=f"register one with 'driftloop train --policy {model}'")
        with self._service(), tempfile.TemporaryDirectory(prefix="driftloop-artifact-") as folder:
            path = mlflow.artifacts.download_artifacts(run_id=info.run_id, artifact_path=f"driftloop/{name}", dst_path=folder, tracking_uri=self.uri)
            return Path(path).read_bytes()

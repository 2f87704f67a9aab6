"""Log a fitted scikit-learn pipeline for the serving tests as driftloop logs models: skops files,
the driftloop pyfunc wrapper, and the SHA-256 digest tag the predictor checks before it loads.

``serving_fixtures.register`` calls :func:`log_safe_model`; a deliberately bad challenger is a
pipeline fitted on inverted labels (it predicts about 1 - p).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd


def log_safe_model(tracking_uri: str, root: Path | None, pipeline: Any, data: pd.DataFrame, numeric: list[str], categorical: list[str], name: str) -> str:
    """Register ``pipeline`` (fitted on ``numeric + categorical``) as a new version of ``name``; returns the version.

    ``root``: artifacts go to ``root/artifacts``; None: wherever the tracking server puts them
    (a server with ``--serve-artifacts`` stores them itself).
    """
    from mlflow import MlflowClient

    from components.registry.artifacts import DIGEST_TAG, artifact_digests
    from components.training.trainers import TrainedModel

    client = MlflowClient(tracking_uri)
    # artifacts beside the tracking DB in tmp, never ./mlruns in the working tree
    exp = client.get_experiment_by_name("serving-tests")
    location = (root / "artifacts").as_uri() if root is not None else None
    exp_id = exp.experiment_id if exp else client.create_experiment("serving-tests", artifact_location=location)
    if not _exists(client, name):
        client.create_registered_model(name)
    model = TrainedModel(kind="sklearn_logreg", features=list(numeric), categorical=list(categorical), seed=0, params={}, pipeline=pipeline)
    run = client.create_run(exp_id)
    with tempfile.TemporaryDirectory(prefix="serving-model-") as tmp:
        folder = model.save_pyfunc(Path(tmp) / "model", data)
        digests = artifact_digests(folder)
        client.log_artifacts(run.info.run_id, str(folder), artifact_path="model")
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                          tags={DIGEST_TAG: json.dumps(digests, sort_keys=True)})
    return str(version.version)


def _exists(client: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return True
    except MlflowException:
        return False

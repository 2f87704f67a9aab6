"""A retrain's intermediate results as files: training rows (with their weights), the fitted model, the verdict.

The KFP steps of the train pipeline hand these to each other as artifacts; each write has
the read that restores the same object.

>>> import tempfile, numpy as np, pandas as pd
>>> folder = Path(tempfile.mkdtemp())
>>> write_training_rows(pd.DataFrame({"x": [1, 2]}), np.array([1.0, 3.0]), folder / "train")
>>> rows, weights = read_training_rows(folder / "train")
>>> rows.columns.tolist(), weights.tolist()
(['x'], [1.0, 3.0])
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.tables import read_frame, write_frame

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from components.training.datasets import TrainingData
    from components.training.evaluate import Verdict

WEIGHT_COLUMN = "_driftloop_weight"  # cohort up-weighting travels with the training rows
_MODEL_META = "trained_model.json"


def write_training_rows(rows: pd.DataFrame, weights: np.ndarray | None, path: str | Path) -> None:
    """Write training rows as parquet, their sample weights (if any) as one extra column."""
    write_frame(rows if weights is None else rows.assign(**{WEIGHT_COLUMN: weights}), path)


def read_training_rows(path: str | Path) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Training rows and their sample weights (``None`` when the rows carry none)."""
    frame = read_frame(path)
    if WEIGHT_COLUMN not in frame.columns:
        return frame, None
    return frame.drop(columns=[WEIGHT_COLUMN]), frame[WEIGHT_COLUMN].to_numpy()


def read_training_data(train_path: str | Path, holdout_path: str | Path, time_range: str, strategy: str, cohort: str | None) -> TrainingData:
    """Rebuild the :class:`~components.training.datasets.TrainingData` a training-set step wrote.

    ``time_range`` is the rows' :attr:`TrainingData.window` (``start/end`` in ISO format),
    not a training-window length such as ``"48h"``.
    """
    import pandas as pd

    from components.training.datasets import TrainingData

    rows, weights = read_training_rows(train_path)
    start, _, end = time_range.partition("/")
    return TrainingData(rows, read_frame(holdout_path), pd.Timestamp(start), pd.Timestamp(end), strategy, cohort or None, weights)


def save_model(model: Any, path: str | Path) -> None:
    """Write a fitted :class:`~components.training.trainers.TrainedModel` as a folder of files that cannot run code on load.

    ``path`` (a KFP Model artifact) becomes a folder: ``trained_model.json`` (kind, columns,
    seed, params, fit time, rows), the scikit-learn object in skops format and, for Keras,
    the network as a native ``.keras`` file. No pickle: a step that reads an artifact
    another step wrote cannot be made to run code by whoever can write the artifact store.
    """
    import json

    import skops.io

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"kind": model.kind, "features": model.features, "categorical": model.categorical, "seed": model.seed,
            "params": model.params, "fit_seconds": model.fit_seconds, "rows": model.rows}
    (folder / _MODEL_META).write_text(json.dumps(meta, indent=2))
    if model.kind == "keras_mlp":
        skops.io.dump(model.preprocessor, folder / "preprocessor.skops")
        model.network.save(folder / "network.keras")
    else:
        skops.io.dump(model.pipeline, folder / "pipeline.skops")


def load_model(path: str | Path) -> Any:
    """Read a model written by :func:`save_model` with the safe loaders (skops allow-list, ``.keras`` in safe mode).

    An unknown type or a missing file is a DataError naming the artifact.
    """
    import json

    from components.errors import DataError
    from components.training.pyfunc import UntrustedArtifactError, load_keras, load_sklearn
    from components.training.trainers import TrainedModel

    folder = Path(path)
    fix = "re-run the train step (it writes trained_model.json with skops/.keras files)"
    if not (folder / _MODEL_META).is_file():
        raise DataError(f"model artifact {folder} has no {_MODEL_META}; refusing to load it (pickled models are not read)", fix=fix)
    meta = json.loads((folder / _MODEL_META).read_text())
    model = TrainedModel(kind=meta["kind"], features=list(meta["features"]), categorical=list(meta["categorical"]), seed=int(meta["seed"]),
                         params=dict(meta["params"]), fit_seconds=float(meta["fit_seconds"]), rows=int(meta["rows"]))
    try:
        if model.kind == "keras_mlp":
            model.preprocessor = load_sklearn(folder / "preprocessor.skops")
            model.network = load_keras(folder / "network.keras")
        else:
            model.pipeline = load_sklearn(folder / "pipeline.skops")
    except (UntrustedArtifactError, FileNotFoundError) as exc:
        raise DataError(f"model artifact {folder}: {exc}; refusing to load it", fix=fix) from None
    return model


def verdict_from_dict(raw: dict[str, Any]) -> Verdict:
    """Rebuild a :class:`~components.training.evaluate.Verdict` from its ``to_dict()``.

    >>> import json
    >>> from components.training.evaluate import Verdict
    >>> v = Verdict(True, ("ok",), "auc", {"overall": {"auc": 0.8}, "segments": {}})
    >>> verdict_from_dict(json.loads(json.dumps(v.to_dict()))) == v
    True
    """
    from components.training.evaluate import Verdict

    return Verdict(passed=bool(raw["passed"]), reasons=tuple(raw["reasons"]), metric=str(raw["metric"]), challenger=raw["challenger"],
                   champion=raw.get("champion"), failed_segments=tuple(raw.get("failed_segments") or ()))

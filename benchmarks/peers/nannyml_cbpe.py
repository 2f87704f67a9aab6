"""NannyML's own CBPE on the windows bench_cbpe.py wrote: the peer, run in its own venv.

NannyML 0.13.1 needs numpy 2 while driftloop's venv is pinned, so bench_cbpe.py runs this
script with ``.driftloop/bench-venvs/nannyml/bin/python``. It imports nothing from driftloop.

Input (parquet, written by bench_cbpe.py): ``--reference`` with columns ``y_true``,
``y_pred_proba``, ``y_pred``; ``--windows`` with the same columns plus ``window`` (str).
Each window is estimated as one chunk (``chunk_number=1``), so NannyML sees exactly the
windows driftloop's estimator sees. Output ``--out`` (JSON)::

    {"nannyml": "0.13.1", "fit_seconds": s, "estimate_seconds": s,
     "windows": {name: {"accuracy": {"value", "lower", "upper"}, "auc": {...}}}}

Usage: ``python nannyml_cbpe.py --reference R.parquet --windows W.parquet --out O.json``
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings

METRICS = {"accuracy": "accuracy", "roc_auc": "auc"}  # NannyML's name -> driftloop's


def _number(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True)
    parser.add_argument("--windows", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    warnings.filterwarnings("ignore")
    import nannyml as nml
    import pandas as pd

    reference = pd.read_parquet(args.reference)
    windows = pd.read_parquet(args.windows)
    started = time.perf_counter()
    estimator = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="y_true", metrics=list(METRICS),
                         problem_type="classification_binary", chunk_number=1)
    estimator.fit(reference)
    fit_seconds = time.perf_counter() - started

    out: dict[str, dict[str, dict[str, float | None]]] = {}
    started = time.perf_counter()
    for name, frame in windows.groupby("window", sort=False):
        # labels withheld: the estimate must come from the scores alone
        result = estimator.estimate(frame.drop(columns=["window", "y_true"]).reset_index(drop=True)).to_df()
        # the result also carries the reference's own chunk; the window is the analysis row
        row = result[result[("chunk", "period")] == "analysis"].iloc[-1]
        out[str(name)] = {
            ours: {"value": _number(row[(theirs, "value")]),
                   "lower": _number(row[(theirs, "lower_confidence_boundary")]),
                   "upper": _number(row[(theirs, "upper_confidence_boundary")])}
            for theirs, ours in METRICS.items()
        }
    estimate_seconds = time.perf_counter() - started
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump({"nannyml": nml.__version__, "fit_seconds": fit_seconds, "estimate_seconds": estimate_seconds,
                   "windows": out}, fh)


if __name__ == "__main__":
    main()

"""Training, evaluation and registration time per trainer, against a plain MLflow peer.

For each trainer kind (sklearn_hgb, sklearn_logreg, keras_mlp) on the credit scenario
(100k rows by default, 1M with ``--full``): build the training set, train, evaluate, and
register with driftloop's registry (lineage params, baseline metrics, reference sample,
profile, pyfunc model). The peer, run side by side on the same fitted scikit-learn
pipeline in the same invocation, is the plain ``mlflow.sklearn.log_model`` +
``mlflow.register_model`` recipe. Prints figures and ratios (register / train, driftloop
register / peer register).

    .venv/bin/python benchmarks/bench_training.py [--rows N] [--full] [--kinds sklearn_hgb,keras_mlp]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.training.workflow import quiet_ml_logging  # noqa: E402

quiet_ml_logging()
warnings.filterwarnings("ignore")

import pandas as pd  # noqa: E402

from components.data.scenarios import generate  # noqa: E402
from components.policy import load_policy  # noqa: E402
from components.registry import ModelRegistry  # noqa: E402
from components.settings import Settings  # noqa: E402
from components.training.datasets import build_training_set  # noqa: E402
from components.training.evaluate import evaluate  # noqa: E402
from components.training.trainers import train_model  # noqa: E402

KINDS = ("sklearn_hgb", "sklearn_logreg", "keras_mlp")


def _peer_register(pipeline: object, example: pd.DataFrame, uri: str, name: str) -> float:
    """The plain recipe: mlflow.sklearn.log_model in a run, then register_model."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("peer")
    started = time.perf_counter()
    with mlflow.start_run(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        # pickle, like our joblib artifacts (the default skops refuses HGB tree predictors)
        info = mlflow.sklearn.log_model(pipeline, name="model", input_example=example, serialization_format="cloudpickle")
        mlflow.register_model(info.model_uri, name)
    return time.perf_counter() - started


def run(rows: int, kinds: list[str]) -> list[dict[str, object]]:
    base = load_policy("credit")
    frame = generate("credit", rows=rows, seed=0)
    end = frame["event_timestamp"].max()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        settings = Settings(workdir=Path(tmp) / "work")
        registry = ModelRegistry(settings)
        registry.versions("warm-up")  # create the SQLite schema outside the timings
        peer_uri = f"sqlite:///{tmp}/peer.db"
        import mlflow

        mlflow.MlflowClient(peer_uri).search_experiments()  # same for the peer's store
        for kind in kinds:
            params = {"epochs": 8, "hidden": [32, 16]} if kind == "keras_mlp" else {}
            policy = base.model_copy(update={"model": f"bench-{kind.replace('_', '-')}", "trainer": base.trainer.model_copy(update={"kind": kind, "params": params})})
            t = time.perf_counter()
            data = build_training_set(policy, "full", end, source=frame)
            t_data = time.perf_counter() - t
            t = time.perf_counter()
            model = train_model(policy, data.train, data.weights)
            t_train = time.perf_counter() - t
            t = time.perf_counter()
            verdict = evaluate(policy, model, None, data.holdout)
            t_eval = time.perf_counter() - t
            t = time.perf_counter()
            registry.register(policy, model, data, verdict, decision_id="bench")
            t_reg = time.perf_counter() - t
            t_peer = None
            if model.pipeline is not None:
                t_peer = _peer_register(model.pipeline, model.input_example(data.train), peer_uri, f"peer-{kind}")
            results.append({"kind": kind, "rows": len(data.train) + len(data.holdout), "data": t_data, "train": t_train, "evaluate": t_eval,
                            "register": t_reg, "peer": t_peer, "auc": verdict.challenger["overall"]["auc"]})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="1M rows")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    rows = 1_000_000 if args.full else args.rows
    kinds = [k for k in args.kinds.split(",") if k]
    print(f"bench_training: credit scenario, {rows:,} generated rows, cpu count {os.cpu_count()}")
    results = run(rows, kinds)
    header = f"{'trainer':<15}{'rows':>9}{'set s':>8}{'train s':>9}{'eval s':>8}{'reg s':>8}{'reg/train':>10}{'peer reg s':>11}{'reg/peer':>9}{'auc':>7}"
    print(header)
    print("-" * len(header))
    for r in results:
        peer = r["peer"]
        ratio_peer = f"{r['register'] / peer:>9.2f}" if peer else f"{'n/a':>9}"  # type: ignore[operator]
        peer_s = f"{peer:>11.2f}" if peer else f"{'n/a':>11}"
        print(f"{r['kind']:<15}{r['rows']:>9,}{r['data']:>8.2f}{r['train']:>9.2f}{r['evaluate']:>8.2f}{r['register']:>8.2f}"  # type: ignore[str-format]
              f"{r['register'] / r['train']:>10.2f}{peer_s}{ratio_peer}{r['auc']:>7.3f}")  # type: ignore[operator]
    print("reg = driftloop register (lineage params, baseline metrics, reference sample, profile, pyfunc); peer = mlflow.sklearn.log_model + register_model")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Serving benchmark: the driftloop KServe predictor against ``mlflow models serve`` on the
same registered model, plus the cost of the prediction log and of the Feast transformer.

Every server is a separate process on 127.0.0.1 with one worker; the load generator sends
single-row requests at concurrency 1, 8 and 32 (asyncio + httpx) and reports p50/p99
latency and throughput. Ratios: driftloop/mlflow, with-log/without-log (goal: logging adds
< 10% to p50), transformer/bare predictor. ``--full`` sends more requests per level.

It also compares model loading before and after issue 16, side by side, in process: the
old format (joblib pickle + logged Python code, ``mlflow.pyfunc.load_model``) against the
safe one (skops with the type allow-list, SHA-256 of every file checked first): load time
and single-row predict p50. ``--load-only`` runs just that comparison.

    .venv/bin/python benchmarks/bench_serving.py [--full] [--no-transformer] [--load-only]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from serving.canary.local import ManagedProcess, free_port  # noqa: E402


def build_model(tmp: Path, rows: int) -> tuple[str, object]:
    """Train the churn policy's sklearn model on scenario data and register it (version 1)."""
    import mlflow

    from components.data.scenarios import generate
    from components.policy import load_policy
    from components.training.trainers import train_model

    policy = load_policy("churn").model_copy(update={"trainer": load_policy("churn").trainer.model_copy(update={"kind": "sklearn_logreg"})})
    data = generate("churn", rows=rows, seed=1)
    model = train_model(policy, data)
    import json

    from components.registry.artifacts import DIGEST_TAG, artifact_digests

    path = model.save_pyfunc(tmp / "model", data)
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("bench", artifact_location=(tmp / "artifacts").as_uri())
    run = client.create_run(exp)
    client.log_artifacts(run.info.run_id, str(path), "model")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("churn")
    # the digests the registry records at registration: the predictor checks them before it loads
    client.create_model_version("churn", f"{run.info.artifact_uri}/model", run.info.run_id, tags={DIGEST_TAG: json.dumps(artifact_digests(path))})
    return uri, (policy, data)


_LEGACY_CODE = """
import joblib, mlflow.models, numpy as np, pandas as pd
from mlflow.pyfunc import PythonModel
from components.training.pyfunc import prepare_frame

class Legacy(PythonModel):
    def load_context(self, context):
        self.pipeline = joblib.load(context.artifacts["pipeline"])
        c = context.model_config
        self.f, self.c = c["features"], c["categorical_features"]

    def predict(self, context, model_input, params=None):
        return np.asarray(self.pipeline.predict_proba(prepare_frame(pd.DataFrame(model_input), self.f, self.c))[:, 1], dtype=float)

mlflow.models.set_model(Legacy())
"""


def load_before_after(tmp: Path, policy: object, data: object, rows: list[dict], n: int) -> dict[str, dict[str, float]]:
    """Load time (median of 5) and in-process single-row predict p50: joblib + code vs skops + digests."""
    import joblib
    import mlflow
    import pandas as pd

    from components.registry.artifacts import artifact_digests, load_verified
    from components.training.trainers import train_model

    model = train_model(policy, data)  # type: ignore[arg-type]
    safe_dir = model.save_pyfunc(tmp / "safe-model", data)  # type: ignore[arg-type]
    digests = artifact_digests(safe_dir)
    joblib.dump(model.pipeline, tmp / "pipeline.joblib")
    (tmp / "legacy_code.py").write_text(_LEGACY_CODE)
    mlflow.pyfunc.save_model(path=str(tmp / "legacy-model"), python_model=str(tmp / "legacy_code.py"), artifacts={"pipeline": str(tmp / "pipeline.joblib")},
                             model_config={"features": model.features, "categorical_features": model.categorical}, pip_requirements=[])
    loaders = {"before (joblib + code)": lambda: mlflow.pyfunc.load_model(str(tmp / "legacy-model")),
               "after (skops + sha256)": lambda: load_verified(safe_dir, digests, "bench")}
    frames = [pd.DataFrame([r]) for r in rows]
    out: dict[str, dict[str, float]] = {}
    for name, loader in loaders.items():
        times, loaded = [], None
        for _ in range(5):
            t = time.perf_counter()
            loaded = loader()
            times.append(time.perf_counter() - t)
        for f in frames[:20]:  # warm up
            loaded.predict(f)
        lat = []
        for i in range(n):
            t = time.perf_counter()
            loaded.predict(frames[i % len(frames)])
            lat.append(time.perf_counter() - t)
        out[name] = {"load_ms": statistics.median(times) * 1000, "p50_ms": statistics.median(lat) * 1000}
    return out


def print_before_after(result: dict[str, dict[str, float]]) -> None:
    print(f"{'model format':<26}{'load ms':>9}{'predict p50 ms':>16}")
    for name, r in result.items():
        print(f"{name:<26}{r['load_ms']:>9.1f}{r['p50_ms']:>16.3f}")


async def load(url: str, make_body: Callable[[int], dict], concurrency: int, n: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def worker() -> None:
            nonlocal errors
            for i in counter:
                t = time.perf_counter()
                r = await client.post(url, json=make_body(i), headers={"x-request-id": uuid.uuid4().hex})
                latencies.append(time.perf_counter() - t)
                errors += r.status_code != 200

        for i in range(min(20, n)):  # warm up
            await client.post(url, json=make_body(i))
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {"p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "rps": n / elapsed, "errors": errors}


def in_process_log_cost(uri: str, rows: list[dict], tmp: Path, n: int) -> dict[str, float]:
    """p50 of MlflowPredictor.predict with and without the prediction log, no HTTP, interleaved."""
    from serving.predictor import MlflowPredictor

    bare = MlflowPredictor("churn", "models:/churn/1", tracking_uri=uri)
    logged = MlflowPredictor("churn", "models:/churn/1", tracking_uri=uri, log_dir=tmp / "inproc-log")
    bare.load()
    logged.load()
    times: dict[str, list[float]] = {"bare": [], "log": []}

    async def run() -> None:
        for i in range(n):
            for name, model in (("bare", bare), ("log", logged)) if i % 2 else (("log", logged), ("bare", bare)):
                t = time.perf_counter()
                await model.predict({"instances": [rows[i % len(rows)]]}, {"x-request-id": f"r{i}"})
                times[name].append(time.perf_counter() - t)

    asyncio.run(run())
    logged.stop()
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="more requests per level")
    ap.add_argument("--no-transformer", action="store_true", help="skip the Feast transformer (saves ~30 s)")
    ap.add_argument("--load-only", action="store_true", help="only the model-format comparison (load time, predict p50), no servers")
    args = ap.parse_args()
    per_level = {1: 1500, 8: 3000, 32: 3000} if args.full else {1: 200, 8: 400, 32: 400}
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    t0 = time.perf_counter()
    uri, (policy, data) = build_model(tmp, rows=24 * 100)
    rows = data[policy.all_features].head(500).to_dict("records")
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows]
    print_before_after(load_before_after(tmp, policy, data, rows, 1000 if args.full else 300))
    if args.load_only:
        return
    env_py = [sys.executable, "-m", "serving.predictor", "--model-name", "churn", "--model-uri", "models:/churn/1", "--tracking-uri", uri]
    procs: dict[str, ManagedProcess] = {}
    ports = {name: free_port() for name in ("driftloop", "driftloop+log", "mlflow", "transformer")}
    try:
        procs["driftloop"] = ManagedProcess([*env_py, "--http-port", str(ports["driftloop"])], f"http://127.0.0.1:{ports['driftloop']}/v2/health/ready", tmp / "p1.log")
        procs["driftloop+log"] = ManagedProcess([*env_py, "--http-port", str(ports["driftloop+log"]), "--log-dir", str(tmp / "predlog")],
                                                f"http://127.0.0.1:{ports['driftloop+log']}/v2/health/ready", tmp / "p2.log")
        os.environ["MLFLOW_TRACKING_URI"] = uri
        # mlflow execs `uvicorn` by name: put this interpreter's bin directory first on PATH
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        procs["mlflow"] = ManagedProcess([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/churn/1", "--env-manager", "local",
                                          "-h", "127.0.0.1", "-p", str(ports["mlflow"]), "-w", "1"], f"http://127.0.0.1:{ports['mlflow']}/ping", tmp / "mlflow.log")
        if not args.no_transformer:
            from components.data.scenarios import write_scenario
            from components.features import apply, ingest, materialize
            from components.settings import Settings

            settings = Settings(workdir=tmp / "work")
            apply(settings)
            write_scenario("churn", settings.data_dir, rows=24 * 100, seed=1)
            ingest("churn", settings)
            materialize("churn", "2024-01-01", "2026-01-01", settings)
            os.environ["DRIFTLOOP_WORKDIR"] = str(settings.workdir)
            procs["transformer"] = ManagedProcess(
                [sys.executable, "-m", "serving.transformer", "--policy", "churn", "--http-port", str(ports["transformer"]),
                 "--predictor-host", f"127.0.0.1:{ports['driftloop']}"], f"http://127.0.0.1:{ports['transformer']}/v2/health/ready", tmp / "t.log")
        for p in procs.values():
            p.wait_ready(300)
        print(f"setup {time.perf_counter() - t0:.0f}s; {os.cpu_count()} cores; single-row requests; 1 worker per server")
        targets = {
            "driftloop": (f"http://127.0.0.1:{ports['driftloop']}/v1/models/churn:predict", lambda i: {"instances": [rows[i % len(rows)]]}),
            "driftloop+log": (f"http://127.0.0.1:{ports['driftloop+log']}/v1/models/churn:predict", lambda i: {"instances": [rows[i % len(rows)]]}),
            "mlflow": (f"http://127.0.0.1:{ports['mlflow']}/invocations", lambda i: {"dataframe_records": [rows[i % len(rows)]]}),
        }
        if "transformer" in procs:
            ids = sorted(set(data[policy.entity].head(200).tolist()))
            targets["transformer"] = (f"http://127.0.0.1:{ports['transformer']}/v1/models/churn:predict", lambda i: {"instances": [{policy.entity: int(ids[i % len(ids)])}]})
        results: dict[tuple[str, int], dict[str, float]] = {}
        print(f"{'server':<15}{'conc':>5}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'errors':>8}")
        for conc, n in per_level.items():
            # interleave servers at each level so background load hits all of them alike
            for name, (url, body) in targets.items():
                r = results[(name, conc)] = asyncio.run(load(url, body, conc, n))
                print(f"{name:<15}{conc:>5}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['rps']:>9.0f}{r['errors']:>8.0f}", flush=True)
        print("\nratios (p50 latency; throughput)")
        for conc in per_level:
            d, lg, m = results[("driftloop", conc)], results[("driftloop+log", conc)], results[("mlflow", conc)]
            line = (f"c={conc:<3} driftloop/mlflow p50 {d['p50_ms'] / m['p50_ms']:.2f}x rps {d['rps'] / m['rps']:.2f}x | "
                    f"log cost p50 {100 * (lg['p50_ms'] / d['p50_ms'] - 1):+.1f}% (goal < +10%)")
            if ("transformer", conc) in results:
                t = results[("transformer", conc)]
                line += f" | transformer/bare p50 {t['p50_ms'] / d['p50_ms']:.2f}x"
            print(line)
        inproc = in_process_log_cost(uri, rows, tmp, 600 if args.full else 300)
        print(f"in-process predict p50 (no HTTP): bare {inproc['bare']:.2f} ms, with log {inproc['log']:.2f} ms "
              f"-> log cost {100 * (inproc['log'] / inproc['bare'] - 1):+.1f}% (goal < +10%)")
        from serving.prediction_log import read_log

        print(f"\nprediction log rows written: {len(read_log(tmp / 'predlog', 'churn'))}; total {time.perf_counter() - t0:.0f}s")
    finally:
        for p in procs.values():
            p.stop()


if __name__ == "__main__":
    main()

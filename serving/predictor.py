"""The KServe predictor: one ``kserve.Model`` serving an MLflow model version.

It loads ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` once
(:mod:`serving.model_loading`: the alias is resolved to a version at load, so a later
alias move does not change a running server), serves KServe's v1 and v2 (Open Inference
Protocol) REST endpoints through ``kserve.ModelServer``, rejects malformed requests with
``InvalidInput`` (HTTP 400) naming the field, writes every prediction to the prediction
log (:mod:`serving.prediction_log`) and counts requests, errors, latency and predictions
per model version for ``/metrics`` (:mod:`serving.metrics`).

Every request gets an id made here (:func:`serving.prediction_log.new_request_id`): it keys
the log record (``<id>-<i>`` per row of a batch), comes back in the ``x-request-id`` response
header and as ``id`` in the v1 and v2 response bodies. A client's own ``x-request-id`` is only
logged, cut to 128 characters, as ``client_request_id``: two clients sending the same id get
two records, and no client can overwrite or claim another request's record or label.

``python -m serving.predictor --model-name churn --model-uri models:/churn@champion
--http-port 8080 --log-dir logs`` runs it; :func:`main` only wires arguments.
``--inject-latency-ms`` and ``--inject-error-rate`` are explicit test hooks for the canary
fault tests.

>>> build_parser().parse_args(["--model-name", "churn", "--model-uri", "models:/churn@champion"]).http_port
8080
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

from components.model_uri import parse_model_uri
from serving.model_loading import resolve_version, schema_of
from serving.prediction_log import client_request_id, new_request_id
from serving.schema import FeatureSchema
from serving.server import (
    DEFAULT_MAX_BATCH,
    KServeModel,
    add_server_arguments,
    check_batch,
    one_blas_thread,
    quiet_request_logs,
    serve_models,
)

__all__ = ["MlflowPredictor", "build_parser", "main", "parse_model_uri", "quiet_request_logs", "resolve_version", "schema_of"]


class MlflowPredictor(KServeModel):  # type: ignore[misc,valid-type]
    """Serve one MLflow pyfunc version under the KServe model name ``name``."""

    def __init__(
        self,
        name: str,
        model_uri: str,
        *,
        tracking_uri: str | None = None,
        log_dir: str | Path | None = None,
        schema: FeatureSchema | None = None,
        inject_latency_ms: float = 0.0,
        inject_error_rate: float = 0.0,
        seed: int = 0,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        super().__init__(name, return_response_headers=True)
        self.model_uri = model_uri
        self.tracking_uri = tracking_uri
        self.log_dir = Path(log_dir) if log_dir else None
        self.schema = schema
        self.inject_latency_ms = inject_latency_ms
        self.inject_error_rate = inject_error_rate
        self._rng = random.Random(seed)
        self.max_batch = max_batch
        self.version = ""
        self._model: Any = None
        self._logger: Any = None

    def load(self) -> bool:
        """Resolve the URI to a version, load the pyfunc and open the prediction log."""
        from serving.metrics import default_metrics
        from serving.model_loading import load_model
        from serving.prediction_log import PredictionLogger

        loaded = load_model(self.model_uri, self.tracking_uri)
        self.version, self._model = loaded.version, loaded.model
        self.schema = self.schema or schema_of(self._model)
        self.metrics = default_metrics()
        if self.log_dir is not None:
            self._logger = PredictionLogger(self.log_dir, self.name)
        self.ready = True
        return self.ready

    def stop(self) -> None:
        """Flush the prediction log when the server stops."""
        if self._logger is not None:
            self._logger.close()
            self._logger = None
        super().stop()

    def _rows(self, payload: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """(model rows, logged rows incl. pass-through keys, is_v2) from a v1 dict or v2 InferRequest."""
        assert self.schema is not None
        if isinstance(payload, dict):
            if "instances" not in payload:
                raise ValueError("body must be {\"instances\": [{feature: value, ...}, ...]}")
            if isinstance(payload["instances"], list):
                check_batch(len(payload["instances"]), self.max_batch)
            rows = self.schema.validate(payload["instances"])
            return rows, [dict(i) for i in payload["instances"]], False
        check_batch(max((int(inp.shape[0]) if inp.shape else 0 for inp in payload.inputs), default=0), self.max_batch)
        columns = {inp.name: list(inp.data) for inp in payload.inputs}
        rows = self.schema.validate_columns(columns)
        extra = [k for k in columns if k not in self.schema.names]
        logged = [{**row, **{k: _plain(columns[k][i]) for k in extra if i < len(columns[k])}} for i, row in enumerate(rows)]
        return rows, logged, True

    async def predict(self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None) -> Any:
        """Validate, predict, log under a server-made id; v1 returns {"predictions", "model_version",
        "id"}, v2 an InferResponse whose ``id`` is that id; the ``x-request-id`` header carries it too."""
        import pandas as pd
        from kserve.errors import InvalidInput

        start = time.perf_counter()
        request_id = new_request_id()  # never the client's: a client id could collide with or overwrite another record
        client_id = client_request_id((headers or {}).get("x-request-id"))
        try:
            rows, logged, is_v2 = self._rows(payload)
        except ValueError as exc:
            self.metrics.error(self.name, self.version, "client")
            raise InvalidInput(str(exc)) from None
        try:
            if self.inject_latency_ms:
                await asyncio.sleep(self.inject_latency_ms / 1000)
            if self.inject_error_rate and self._rng.random() < self.inject_error_rate:
                raise RuntimeError(f"injected failure (--inject-error-rate {self.inject_error_rate})")
            frame = pd.DataFrame(rows, columns=self.schema.names)  # type: ignore[union-attr]
            predictions = [float(p) for p in self._model.predict(frame)]
        except Exception:
            self.metrics.error(self.name, self.version, "server")
            raise
        if self._logger is not None:
            for i, (row, p) in enumerate(zip(logged, predictions, strict=True)):
                self._logger.log(request_id if len(rows) == 1 else f"{request_id}-{i}", self.version, row, p, client_request_id=client_id)
        self.metrics.observe(self.name, self.version, time.perf_counter() - start, predictions)
        if response_headers is not None:
            response_headers.update({"x-request-id": request_id, "x-model-version": self.version})
        if not is_v2:
            return {"predictions": predictions, "model_version": self.version, "id": request_id}
        from kserve import InferOutput, InferResponse

        out = InferOutput(name="predictions", shape=[len(predictions)], datatype="FP64", data=predictions)
        return InferResponse(model_name=self.name, model_version=self.version, infer_outputs=[out], response_id=request_id)


def _plain(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def build_parser() -> argparse.ArgumentParser:
    """The command-line arguments of ``python -m serving.predictor``."""
    p = argparse.ArgumentParser(prog="python -m serving.predictor", description="Serve an MLflow model version with KServe.")
    p.add_argument("--model-name", required=True, help="KServe model name (URL path), usually the policy's model")
    p.add_argument("--model-uri", required=True, help="models:/<name>@<alias> or models:/<name>/<version>")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--log-dir", default=None, help="prediction log directory (none: do not log)")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: Settings)")
    p.add_argument("--policy", default=None, help="policy whose features define the request schema")
    p.add_argument("--inject-latency-ms", type=float, default=0.0, help="TEST HOOK: sleep this long per request")
    p.add_argument("--inject-error-rate", type=float, default=0.0, help="TEST HOOK: fail this share of requests with HTTP 500")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--access-log", action="store_true", help="log every request (uvicorn access log)")
    add_server_arguments(p)
    return p


def main(argv: list[str] | None = None) -> None:
    """Wire arguments into an MlflowPredictor and run kserve.ModelServer (REST only)."""
    args = build_parser().parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv when imported; keep our flags away from it
    one_blas_thread()  # before scikit-learn loads libgomp; load() limits the loaded libraries again
    from components.settings import Settings

    schema = None
    if args.policy:
        from components.policy import load_policy

        schema = FeatureSchema.from_policy(load_policy(args.policy))
    model = MlflowPredictor(
        args.model_name, args.model_uri, tracking_uri=args.tracking_uri or Settings.from_env().mlflow_tracking_uri,
        log_dir=args.log_dir, schema=schema, inject_latency_ms=args.inject_latency_ms,
        inject_error_rate=args.inject_error_rate, seed=args.seed, max_batch=args.max_batch,
    )
    model.load()
    quiet_request_logs(args.access_log)
    serve_models([model], http_port=args.http_port, host=args.host, max_body_bytes=args.max_body_bytes)


if __name__ == "__main__":
    main()

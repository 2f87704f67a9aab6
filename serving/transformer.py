"""The Feast transformer: entity ids in, features from the online store, prediction out.

A KServe transformer is a ``kserve.Model`` whose ``predict`` forwards to
``--predictor-host``: this one's ``preprocess`` turns ``{"instances": [{"customer_id": 7}]}``
into the policy's features read from Feast's online store
(:func:`components.features.online_features`); the predictor does the rest. The entity
id (and the segment column) ride along so the prediction log can join labels by entity.
An id with no materialized features is ``InvalidInput`` (HTTP 400) naming it.

``python -m serving.transformer --policy churn --predictor-host 127.0.0.1:8081 --http-port 8080``

>>> entity_ids([{"customer_id": 7}, {"customer_id": "8"}], "customer_id")
[7, 8]
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from serving.server import (
    DEFAULT_MAX_BATCH,
    KServeModel,
    add_server_arguments,
    check_batch,
    quiet_request_logs,
    serve_models,
)


def entity_ids(instances: Any, entity: str) -> list[int]:
    """The entity id of every instance; ValueError naming the bad one."""
    if not isinstance(instances, list) or not instances:
        raise ValueError(f"'instances' must be a non-empty list of {{{entity!r}: id}} objects")
    ids = []
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict) or entity not in inst:
            raise ValueError(f"instances[{i}]: missing {entity!r}; send {{{entity!r}: <id>}}")
        try:
            ids.append(int(inst[entity]))
        except (TypeError, ValueError):
            raise ValueError(f"instances[{i}].{entity}: expected an integer id, got {inst[entity]!r}") from None
    return ids


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


class FeastTransformer(KServeModel):  # type: ignore[misc,valid-type]
    """Look entity features up in Feast's online store and forward them to the predictor."""

    def __init__(self, name: str, policy: Any, settings: Any = None, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        super().__init__(name)
        self.policy = policy
        self.max_batch = max_batch
        self.settings = settings
        self._store: Any = None

    def load(self) -> bool:
        """Open the feature store once (the registry is read at startup, not per request)."""
        from components.features.store import open_store
        from components.settings import Settings

        self.settings = self.settings or Settings.from_env()
        self._store = open_store(self.settings)
        self.ready = True
        return self.ready

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """``{"instances": [{entity: id}]}`` -> ``{"instances": [{feature: value, ..., entity: id}]}``."""
        from kserve.errors import InvalidInput

        from components.errors import DriftloopError
        from components.features import online_features

        policy = self.policy
        instances = payload.get("instances") if isinstance(payload, dict) else None
        if isinstance(instances, list):
            check_batch(len(instances), self.max_batch)
        try:
            ids = entity_ids(payload.get("instances") if isinstance(payload, dict) else None, policy.entity)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        try:
            frame = online_features(policy, ids, settings=self.settings, store=self._store)
        except DriftloopError as exc:
            raise InvalidInput(str(exc)) from None
        missing = frame[policy.all_features].isna().all(axis=1)
        if missing.any():
            unknown = [ids[i] for i in missing.to_numpy().nonzero()[0]]
            raise InvalidInput(f"unknown {policy.entity} {unknown[:5]}: no features in the online store (materialize them or check the id)")
        extra = [c for c in (policy.segment_column,) if c and c in frame.columns and c not in policy.all_features]
        cols = [*policy.all_features, *extra, policy.entity]
        return {"instances": [{c: _plain(v) for c, v in row.items()} for row in frame[cols].to_dict("records")]}


def main(argv: list[str] | None = None) -> None:
    """Wire arguments into a FeastTransformer and run kserve.ModelServer in front of the predictor."""
    p = argparse.ArgumentParser(prog="python -m serving.transformer", description="Feast transformer in front of a KServe predictor.")
    # KServe appends --model_name, --predictor_host and --http_port to a custom transformer's
    # args, so both spellings are accepted.
    p.add_argument("--policy", required=True)
    p.add_argument("--predictor-host", "--predictor_host", dest="predictor_host", required=True, help="host[:port] of the predictor")
    p.add_argument("--http-port", "--http_port", dest="http_port", type=int, default=8080)
    p.add_argument("--model-name", "--model_name", dest="model_name", default=None, help="default: the policy's model")
    add_server_arguments(p)
    args = p.parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv when imported
    from kserve.predictor_config import PredictorConfig

    from components.policy import load_policy

    policy = load_policy(args.policy)
    model = FeastTransformer(args.model_name or policy.model, policy)
    model.max_batch = args.max_batch
    model.load()
    quiet_request_logs()
    serve_models([model], http_port=args.http_port, host=args.host, max_body_bytes=args.max_body_bytes,
                 predictor_config=PredictorConfig(args.predictor_host, "v1"))


if __name__ == "__main__":
    main()

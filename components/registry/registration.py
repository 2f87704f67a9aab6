"""Registration: log a trained model with its lineage, baseline and reference sample, and register it once.

The idempotency key (model + window + strategy + cohort + decision id) is a version tag,
searched before registering, under a file lock on a local SQLite store; two registrations
racing on a server both settle on the lowest version (the loser deletes its own). If
logging fails the run is marked FAILED and no version exists. The SHA-256 of every model
file is a version tag (:data:`~components.registry.artifacts.DIGEST_TAG`), checked before load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from components.errors import DriftloopError
from components.jsonsafe import json_safe
from components.monitor.profile import ReferenceProfile
from components.policy import Policy
from components.registry.artifacts import (
    DIGEST_TAG,
    PROFILE_DIGEST_TAG,
    REFERENCE_PROFILE_FILE,
    artifact_digests,
)
from components.registry.store import (
    BASELINE_FILE,
    KEY_TAG,
    PROFILE_FILE,
    REFERENCE_FILE,
    VERDICT_FILE,
    MlflowStore,
)

if TYPE_CHECKING:
    from components.registry.store import ModelVersionInfo


class Registration(MlflowStore):
    """Register versions (see the module docstring)."""

    @staticmethod
    def idempotency_key(model: str, window: str, strategy: str, cohort: str | None, decision_id: str | None) -> str:
        """The key that makes a retry return the existing version instead of a duplicate."""
        raw = json.dumps([model, window, strategy, cohort, decision_id])
        return hashlib.sha256(raw.encode()).hexdigest()

    def register(
        self,
        policy: Policy,
        model: Any,
        training: Any,
        verdict: Any,
        decision_id: str | None = None,
        feature_service: str | None = None,
        reference_sample: pd.DataFrame | None = None,
    ) -> ModelVersionInfo:
        """Log ``model`` (a :class:`~components.training.trainers.TrainedModel`) with its lineage and register it.

        ``training`` is the :class:`~components.training.datasets.TrainingData`, ``verdict`` the
        :class:`~components.training.evaluate.Verdict` whose challenger metrics become the
        baseline. ``reference_sample`` defaults to the holdout with predictions. Retrying with
        the same window, strategy, cohort and decision id returns the existing version.
        """
        from components.training.reference import build_reference_sample, profile

        name = policy.model
        key = self.idempotency_key(name, training.window, training.strategy, training.cohort, decision_id)
        client = self._client()
        with self._lock(name):
            existing = self.find(name, key)
            if existing is not None:
                return existing
            experiment_id = self._experiment(name)
            self._ensure_registered_model(name, policy)
            sample = reference_sample if reference_sample is not None else build_reference_sample(policy, model, training.holdout, seed=policy.trainer.seed)
            run_id, source, digests, profile_digest = self._log_run(experiment_id, policy, model, training, verdict, decision_id, feature_service or policy.feature_service, key, sample, profile(policy, training.train))
            try:
                with self._service():
                    version = client.create_model_version(
                        name, source=source, run_id=run_id,
                        tags={KEY_TAG: key, "driftloop.strategy": training.strategy, "driftloop.window": training.window, "driftloop.decision_id": decision_id or "", "driftloop.gate_passed": str(bool(verdict.passed)).lower(),
                              DIGEST_TAG: json.dumps(digests, sort_keys=True, separators=(",", ":")), **_cohort_tags(policy, training)},
                    )
                with self._service():  # the reference profile's digest, checked before the monitors use it
                    client.set_model_version_tag(name, version.version, PROFILE_DIGEST_TAG, profile_digest)
            except Exception:
                client.set_terminated(run_id, status="FAILED")
                raise
            return self._settle(name, key, int(version.version))

    def _log_run(self, experiment_id: str, policy: Policy, model: Any, training: Any, verdict: Any, decision_id: str | None, feature_service: str | None, key: str, sample: pd.DataFrame, prof: dict[str, Any]) -> tuple[str, str, dict[str, str], str]:
        client = self._client()
        params = {
            "strategy": training.strategy, "window_start": training.window_start.isoformat(), "window_end": training.window_end.isoformat(),
            "cohort": training.cohort or "", "decision_id": decision_id or "", "feature_service": feature_service or "",
            "trainer_kind": policy.trainer.kind, "trainer_seed": policy.trainer.seed, "trainer_params": json.dumps(policy.trainer.params, sort_keys=True),
            "holdout_share": policy.trainer.holdout, "train_rows": len(training.train), "holdout_rows": len(training.holdout),
            "gate_metric": verdict.metric, "gate_passed": bool(verdict.passed), "upweighted": training.weights is not None,
        }
        tags = {KEY_TAG: key, "driftloop.model": policy.model, "driftloop.strategy": training.strategy, "driftloop.decision_id": decision_id or "", "driftloop.window": training.window} | _cohort_tags(policy, training)
        with self._service():
            run = client.create_run(experiment_id, run_name=f"{policy.model}-{training.strategy}-{training.window_end:%Y%m%dT%H%M}", tags=tags)
        run_id = run.info.run_id
        baseline = {"overall": verdict.challenger["overall"], "segments": verdict.challenger["segments"]}
        try:
            # Only explicit-URI client calls: no global tracking URI (MLflow's fluent API would
            # also export it as MLFLOW_TRACKING_URI, leaking into the next Settings.from_env()).
            from mlflow.entities import Metric, Param

            now = int(time.time() * 1000)
            metrics = _metric_dict(baseline) | {"fit_seconds": float(getattr(model, "fit_seconds", 0.0))}
            with self._service():
                client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()], params=[Param(k, str(v)) for k, v in params.items()])
                with tempfile.TemporaryDirectory(prefix="driftloop-run-") as tmp:
                    folder = Path(tmp) / "driftloop"
                    folder.mkdir()
                    (folder / BASELINE_FILE).write_text(json.dumps(json_safe(baseline), indent=2))
                    (folder / VERDICT_FILE).write_text(json.dumps(verdict.to_dict(), indent=2))
                    (folder / PROFILE_FILE).write_text(json.dumps(json_safe(prof), indent=2))
                    sample.to_parquet(folder / REFERENCE_FILE, index=False)
                    profile_digest = ReferenceProfile.build(policy, sample).save(folder / REFERENCE_PROFILE_FILE)  # drift tests read it
                    client.log_artifacts(run_id, str(folder), artifact_path="driftloop")
                    model.save_pyfunc(Path(tmp) / "model", training.train)
                    digests = artifact_digests(Path(tmp) / "model")  # checked before every load
                    client.log_artifacts(run_id, str(Path(tmp) / "model"), artifact_path="model")
                client.set_terminated(run_id, status="FINISHED")
        except Exception as exc:
            with contextlib.suppress(Exception):
                client.set_tag(run_id, "driftloop.status", "failed")
                client.set_terminated(run_id, status="FAILED")
            if isinstance(exc, DriftloopError):
                raise
            raise DriftloopError(f"logging the model run to MLflow at {self.uri} failed ({exc.__class__.__name__}: {exc}); no version was registered", fix="check the artifact store is writable and retry") from exc
        return run_id, f"{run.info.artifact_uri}/model", digests, profile_digest

    def _settle(self, model: str, key: str, mine: int) -> ModelVersionInfo:
        """After a race, keep the lowest version with ``key``; delete ours if it lost."""
        winner = self.find(model, key)
        assert winner is not None
        if winner.version != mine:
            with self._service():
                info = self._require(model, mine)
                self._client().set_tag(info.run_id, "driftloop.duplicate_of", str(winner.version))
                self._client().delete_model_version(model, str(mine))
        return winner


def _cohort_tags(policy: Policy, training: Any) -> dict[str, str]:
    """Cohort lineage: ``driftloop.training_cohorts`` (JSON list of the cohorts in the training rows) and, for a
    cohort retrain, ``driftloop.cohort`` and ``driftloop.specialist`` (trained on that cohort's rows only)."""
    from components.training.datasets import training_cohorts

    try:
        tags = {"driftloop.training_cohorts": json.dumps(training_cohorts(policy, training))}
    except DriftloopError:  # a policy without a cohort column
        tags = {}
    if training.cohort:
        tags |= {"driftloop.cohort": str(training.cohort), "driftloop.specialist": str(training.weights is None).lower()}
    return tags


def _metric_dict(baseline: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric, value in baseline["overall"].items():
        if isinstance(value, int | float) and math.isfinite(value):
            out[f"baseline.{metric}"] = float(value)
    for segment, values in baseline["segments"].items():
        for metric, value in values.items():
            if isinstance(value, int | float) and math.isfinite(value):
                out[f"baseline.segment.{re.sub(r'[^A-Za-z0-9_.-]', '_', str(segment))}.{metric}"] = float(value)
    return out

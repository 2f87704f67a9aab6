"""The MLflow model registry: one experiment and one registered model per policy.

Each version carries its training window, strategy, cohort, trigger decision, feature
service, baseline metrics (overall and per segment, as run metrics and a JSON artifact),
a reference sample (parquet, with predictions and labels) and a per-feature profile.

Registration is idempotent: the key (model + window + strategy + cohort + decision id)
is a version tag, searched before registering, under a file lock on a local SQLite
store; two registrations racing on a server both settle on the lowest version (the
loser deletes its own). If logging fails the run is marked FAILED and no version exists.

Aliases ``champion`` and ``challenger`` move only through :meth:`ModelRegistry.promote`,
:meth:`~ModelRegistry.set_challenger` and :meth:`~ModelRegistry.rollback`; every move is
an audit tag on the registered model (who, why, when), read back by
:meth:`~ModelRegistry.history`.

>>> ModelRegistry.idempotency_key("churn", "2025-01-01T00:00:00+00:00/2025-07-01T00:00:00+00:00", "full", None, "d-1")[:12]
'b1e8799b1ef9'
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import math
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from components.errors import DataError, DriftloopError, ServiceUnavailable
from components.jsonsafe import json_safe
from components.policy import Policy
from components.settings import Settings

CHAMPION, CHALLENGER = "champion", "challenger"
KEY_TAG = "driftloop.idempotency_key"
AUDIT_PREFIX = "driftloop.audit."
BASELINE_FILE, VERDICT_FILE, PROFILE_FILE, REFERENCE_FILE = "baseline_metrics.json", "verdict.json", "profile.json", "reference_sample.parquet"
_FIX = "start the tracking server (mlflow server ...) or point DRIFTLOOP_MLFLOW_TRACKING_URI at a reachable one"


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered version: number, run, aliases, version tags, run params and metrics."""

    model: str
    version: int
    run_id: str
    source: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    created: str = ""

    @property
    def uri(self) -> str:
        """``models:/<model>/<version>``."""
        return f"models:/{self.model}/{self.version}"


class ModelRegistry:
    """Register, look up, load and promote model versions in MLflow (``settings.mlflow_tracking_uri``)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.uri = self.settings.mlflow_tracking_uri
        self._checked = False

    # ---- registration -------------------------------------------------------------------
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
            run_id, source = self._log_run(experiment_id, policy, model, training, verdict, decision_id, feature_service or policy.feature_service, key, sample, profile(policy, training.train))
            try:
                with self._service():
                    version = client.create_model_version(
                        name, source=source, run_id=run_id,
                        tags={KEY_TAG: key, "driftloop.strategy": training.strategy, "driftloop.window": training.window, "driftloop.decision_id": decision_id or "", "driftloop.gate_passed": str(bool(verdict.passed)).lower()},
                    )
            except Exception:
                client.set_terminated(run_id, status="FAILED")
                raise
            return self._settle(name, key, int(version.version))

    def find(self, model: str, key: str) -> ModelVersionInfo | None:
        """The version registered with idempotency ``key`` (the lowest, if a race made two)."""
        found = self._versions(f"name = '{model}' and tags.`{KEY_TAG}` = '{key}'")
        return min(found, key=lambda v: v.version) if found else None

    # ---- aliases and audit ----------------------------------------------------------------
    def set_challenger(self, model: str, version: int, actor: str = "driftloop", reason: str = "") -> ModelVersionInfo:
        """Point ``challenger`` at ``version``."""
        info = self._require(model, version)
        previous = self.get(model, CHALLENGER)
        with self._service():
            self._client().set_registered_model_alias(model, CHALLENGER, str(version))
            self._client().set_model_version_tag(model, str(version), "driftloop.challenger_since", _now())
        self._audit(model, "set_challenger", CHALLENGER, version, previous.version if previous else None, actor, reason)
        return self._require(model, info.version)

    def promote(self, model: str, version: int | None = None, actor: str = "driftloop", reason: str = "") -> ModelVersionInfo:
        """Make ``version`` (default: the challenger) the champion; the old champion keeps a tag."""
        if version is None:
            challenger = self.get(model, CHALLENGER)
            if challenger is None:
                raise DataError(f"model {model!r} has no challenger to promote", fix="pass --version or register a challenger first")
            version = challenger.version
        self._require(model, version)
        old = self.get(model, CHAMPION)
        client = self._client()
        now = _now()
        with self._service():
            client.set_registered_model_alias(model, CHAMPION, str(version))
            for k, v in {"driftloop.champion_since": now, "driftloop.promoted_by": actor, "driftloop.promote_reason": reason}.items():
                client.set_model_version_tag(model, str(version), k, v)
            challenger = self.get(model, CHALLENGER)
            if challenger is not None and challenger.version == version:
                client.delete_registered_model_alias(model, CHALLENGER)
            if old is not None and old.version != version:
                for k, v in {"driftloop.former_champion": "true", "driftloop.champion_until": now, "driftloop.replaced_by": str(version)}.items():
                    client.set_model_version_tag(model, str(old.version), k, v)
        self._audit(model, "promote", CHAMPION, version, old.version if old else None, actor, reason)
        return self._require(model, version)

    def rollback(self, model: str, actor: str = "driftloop", reason: str = "") -> ModelVersionInfo | None:
        """Drop the challenger; with none, restore the champion that the last promotion replaced.

        Returns the champion after the rollback (``None`` if there is none).
        """
        client = self._client()
        challenger = self.get(model, CHALLENGER)
        now = _now()
        if challenger is not None:
            with self._service():
                client.delete_registered_model_alias(model, CHALLENGER)
                client.set_model_version_tag(model, str(challenger.version), "driftloop.rolled_back", now)
                client.set_model_version_tag(model, str(challenger.version), "driftloop.rollback_reason", reason)
            self._audit(model, "rollback", CHALLENGER, None, challenger.version, actor, reason)
            return self.get(model, CHAMPION)
        champion = self.get(model, CHAMPION)
        previous = next((e["previous"] for e in reversed(self.history(model)) if e["event"] == "promote" and e["version"] == (champion.version if champion else None)), None)
        if champion is None or previous is None:
            raise DataError(f"model {model!r} has no challenger and no earlier champion to roll back to", fix="check 'driftloop registry history --model " + model + "'")
        with self._service():
            client.set_registered_model_alias(model, CHAMPION, str(previous))
            client.set_model_version_tag(model, str(champion.version), "driftloop.rolled_back", now)
            client.set_model_version_tag(model, str(champion.version), "driftloop.rollback_reason", reason)
            client.set_model_version_tag(model, str(previous), "driftloop.champion_since", now)
        self._audit(model, "rollback", CHAMPION, previous, champion.version, actor, reason)
        return self.get(model, CHAMPION)

    def history(self, model: str) -> list[dict[str, Any]]:
        """Every alias move, oldest first: ``at, event, alias, version, previous, actor, reason``."""
        with self._service():
            try:
                tags = self._client().get_registered_model(model).tags
            except Exception as exc:
                if _not_found(exc):
                    return []
                raise
        events = [json.loads(v) for k, v in tags.items() if k.startswith(AUDIT_PREFIX)]
        return sorted(events, key=lambda e: (e["at"], e["seq"]))

    def champion_at(self, model: str, when: str | datetime) -> int | None:
        """Which version served as champion at ``when`` (from the audit trail)."""
        at = pd.Timestamp(when)
        at = at.tz_localize("UTC") if at.tzinfo is None else at
        serving = None
        for event in self.history(model):
            if event["alias"] == CHAMPION and pd.Timestamp(event["at"]) <= at:
                serving = event["version"]
        return serving

    # ---- lookups ------------------------------------------------------------------------
    def get(self, model: str, alias: str) -> ModelVersionInfo | None:
        """The version behind ``alias`` (``None`` if the alias or the model does not exist)."""
        with self._service():
            try:
                version = self._client().get_model_version_by_alias(model, alias)
            except Exception as exc:
                if _not_found(exc):
                    return None
                raise
        return self._info(version)

    def resolve(self, model: str, ref: str | int) -> ModelVersionInfo:
        """The version ``ref`` names now: an alias, a version number or a ``models:/`` URI.

        The one version resolver: the predictor, the canary, the monitor step and the CLI
        all call it. A reference that does not resolve is a ConfigError naming the fix.
        """
        from components.errors import ConfigError
        from components.model_uri import model_uri, parse_model_uri

        parsed = parse_model_uri(model_uri(model, ref))
        info = self._find_version(model, int(parsed.version)) if parsed.version else self.get(model, str(parsed.alias))
        if info is None:
            raise ConfigError(f"{model_uri(model, ref)} does not resolve in the registry at {self.uri}",
                              fix=f"register a version or set the alias (driftloop registry list --model {model})")
        return info

    def _find_version(self, model: str, version: int) -> ModelVersionInfo | None:
        try:
            return self._require(model, version)
        except DataError:
            return None

    def versions(self, model: str) -> list[ModelVersionInfo]:
        """All versions of ``model``, newest first (with their aliases)."""
        found = self._versions(f"name = '{model}'")
        if not found:
            return []
        with self._service():
            aliases = self._client().get_registered_model(model).aliases  # search results omit aliases
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(int(version), []).append(alias)
        return sorted((replace(v, aliases=tuple(sorted(by_version.get(v.version, [])))) for v in found), key=lambda v: -v.version)

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

    # ---- internals ------------------------------------------------------------------------
    def _client(self) -> Any:
        from mlflow import MlflowClient

        if not self._checked:
            self._check_reachable()
            self._checked = True
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _check_reachable(self) -> None:
        if self.uri.startswith(("http://", "https://")):
            import httpx

            try:
                httpx.get(f"{self.uri.rstrip('/')}/health", timeout=5.0).raise_for_status()
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(f"MLflow tracking server {self.uri} is unreachable ({exc.__class__.__name__}: {exc})", fix=_FIX) from None
        elif self.uri.startswith("sqlite:///"):
            path = Path(self.uri.removeprefix("sqlite:///"))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ServiceUnavailable(f"cannot create the MLflow store {self.uri}: {exc}", fix="use a writable --workdir or DRIFTLOOP_WORKDIR") from None

    @contextlib.contextmanager
    def _service(self) -> Iterator[None]:
        """Turn connection failures into ServiceUnavailable naming the URI; let the rest through."""
        try:
            yield
        except DriftloopError:
            raise
        except Exception as exc:
            text = f"{exc.__class__.__name__}: {exc}"
            if any(s in text for s in ("ConnectionError", "Max retries", "Connection refused", "OperationalError", "could not connect", "API request to")):
                raise ServiceUnavailable(f"MLflow at {self.uri} is unavailable ({text[:300]})", fix=_FIX) from None
            raise

    @contextlib.contextmanager
    def _lock(self, model: str) -> Iterator[None]:
        """A file lock serialising registrations on a local SQLite store (no-op for a server)."""
        if not self.uri.startswith("sqlite:///"):
            yield
            return
        path = Path(self.uri.removeprefix("sqlite:///")).with_suffix(f".{model}.lock")
        with open(path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _experiment(self, model: str) -> str:
        from mlflow.exceptions import MlflowException

        client = self._client()
        name = f"driftloop/{model}"
        with self._service():
            found = client.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            location = None
            if not self.uri.startswith(("http://", "https://")):
                location = (self.settings.artifact_root / model).resolve().as_uri()
            try:
                return str(client.create_experiment(name, artifact_location=location, tags={"driftloop.model": model}))
            except MlflowException:  # created concurrently
                found = client.get_experiment_by_name(name)
                if found is None:
                    raise
                return str(found.experiment_id)

    def _ensure_registered_model(self, model: str, policy: Policy) -> None:
        from mlflow.exceptions import MlflowException

        client = self._client()
        with self._service():
            try:
                client.get_registered_model(model)
            except MlflowException as exc:
                if not _not_found(exc):
                    raise
                with contextlib.suppress(MlflowException):  # another registration created it meanwhile
                    client.create_registered_model(model, tags={"driftloop.policy": policy.model}, description=policy.description or None)

    def _log_run(self, experiment_id: str, policy: Policy, model: Any, training: Any, verdict: Any, decision_id: str | None, feature_service: str | None, key: str, sample: pd.DataFrame, prof: dict[str, Any]) -> tuple[str, str]:
        client = self._client()
        params = {
            "strategy": training.strategy, "window_start": training.window_start.isoformat(), "window_end": training.window_end.isoformat(),
            "cohort": training.cohort or "", "decision_id": decision_id or "", "feature_service": feature_service or "",
            "trainer_kind": policy.trainer.kind, "trainer_seed": policy.trainer.seed, "trainer_params": json.dumps(policy.trainer.params, sort_keys=True),
            "holdout_share": policy.trainer.holdout, "train_rows": len(training.train), "holdout_rows": len(training.holdout),
            "gate_metric": verdict.metric, "gate_passed": bool(verdict.passed), "upweighted": training.weights is not None,
        }
        tags = {KEY_TAG: key, "driftloop.model": policy.model, "driftloop.strategy": training.strategy, "driftloop.decision_id": decision_id or "", "driftloop.window": training.window}
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
                    client.log_artifacts(run_id, str(folder), artifact_path="driftloop")
                    model.save_pyfunc(Path(tmp) / "model", training.train)
                    client.log_artifacts(run_id, str(Path(tmp) / "model"), artifact_path="model")
                client.set_terminated(run_id, status="FINISHED")
        except Exception as exc:
            with contextlib.suppress(Exception):
                client.set_tag(run_id, "driftloop.status", "failed")
                client.set_terminated(run_id, status="FAILED")
            if isinstance(exc, DriftloopError):
                raise
            raise DriftloopError(f"logging the model run to MLflow at {self.uri} failed ({exc.__class__.__name__}: {exc}); no version was registered", fix="check the artifact store is writable and retry") from exc
        return run_id, f"{run.info.artifact_uri}/model"

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

    def _audit(self, model: str, event: str, alias: str, version: int | None, previous: int | None, actor: str, reason: str) -> None:
        seq = time.time_ns()
        record = {"at": _now(), "seq": seq, "event": event, "alias": alias, "version": version, "previous": previous, "actor": actor, "reason": reason}
        with self._service():
            self._client().set_registered_model_tag(model, f"{AUDIT_PREFIX}{seq:020d}.{uuid.uuid4().hex[:6]}", json.dumps(record))

    def _require(self, model: str, version: int) -> ModelVersionInfo:
        with self._service():
            try:
                mv = self._client().get_model_version(model, str(version))
            except Exception as exc:
                if _not_found(exc):
                    raise DataError(f"model {model!r} has no version {version}", fix=f"list versions with 'driftloop registry list --model {model}'") from None
                raise
        return self._info(mv)

    def _versions(self, filter_string: str) -> list[ModelVersionInfo]:
        with self._service():
            found = self._client().search_model_versions(filter_string)
        return [self._info(v) for v in found]

    def _info(self, mv: Any) -> ModelVersionInfo:
        params: dict[str, str] = {}
        metrics: dict[str, float] = {}
        if mv.run_id:
            with self._service(), contextlib.suppress(Exception):
                run = self._client().get_run(mv.run_id)
                params, metrics = dict(run.data.params), dict(run.data.metrics)
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat() if mv.creation_timestamp else ""
        return ModelVersionInfo(mv.name, int(mv.version), mv.run_id or "", mv.source or "", tuple(getattr(mv, "aliases", []) or []), dict(mv.tags or {}), params, metrics, created)

    def _artifact(self, model: str, alias: str, name: str) -> bytes:
        import mlflow

        info = self.get(model, alias) if not str(alias).isdigit() else self._require(model, int(alias))
        if info is None:
            raise DataError(f"model {model!r} has no {alias!r} version", fix=f"register one with 'driftloop train --policy {model}'")
        with self._service(), tempfile.TemporaryDirectory(prefix="driftloop-artifact-") as folder:
            path = mlflow.artifacts.download_artifacts(run_id=info.run_id, artifact_path=f"driftloop/{name}", dst_path=folder, tracking_uri=self.uri)
            return Path(path).read_bytes()


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


def _not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code == "RESOURCE_DOES_NOT_EXIST" or "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower()


def _now() -> str:
    return datetime.now(UTC).isoformat()

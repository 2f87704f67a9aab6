"""The MLflow side of the registry: the client, reachability and errors, locks, and version lookups.

:class:`MlflowStore` is the base the registry's other parts build on; it holds no
driftloop rules, only access to one tracking/registry URI.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from components.errors import ConfigError, DataError, DriftloopError, ServiceUnavailable
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


class MlflowStore:
    """Look up model versions in MLflow (``settings.mlflow_tracking_uri``); connection failures become ServiceUnavailable."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.uri = self.settings.mlflow_tracking_uri
        self._checked = False

    def get(self, model: str, alias: str) -> ModelVersionInfo | None:
        """The version behind ``alias`` (``None`` if the alias or the model does not exist)."""
        with self._service():
            try:
                version = self._client().get_model_version_by_alias(model, alias)
            except Exception as exc:
                # MLflow's basic-auth app answers 403, not 404, for a model nobody has registered yet
                # (no permission row to check): a fresh cluster's first training must still see "no champion"
                if _not_found(exc) or (_denied(exc) and not self._client().search_registered_models(f"name = '{model}'", max_results=1)):
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

    def find(self, model: str, key: str) -> ModelVersionInfo | None:
        """The version registered with idempotency ``key`` (the lowest, if a race made two)."""
        found = self._versions(f"name = '{model}' and tags.`{KEY_TAG}` = '{key}'")
        return min(found, key=lambda v: v.version) if found else None

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
            if "PERMISSION_DENIED" in text or "error code 403" in text:
                user = os.environ.get("MLFLOW_TRACKING_USERNAME") or "anonymous"
                raise ConfigError(f"MLflow at {self.uri} refused user {user!r}: permission denied ({text[:200]})",
                                  fix="this user may only read; run writes (register, aliases) with the writer's MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD") from None
            if "UNAUTHENTICATED" in text or "error code 401" in text:
                raise ConfigError(f"MLflow at {self.uri} requires credentials and refused the ones given",
                                  fix="set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (the registry's reader or writer)") from None
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


def _denied(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code == "PERMISSION_DENIED" or "PERMISSION_DENIED" in str(exc) or "error code 403" in str(exc)


def _not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code == "RESOURCE_DOES_NOT_EXIST" or "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower()


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- the registry's authentication (MLflow's basic-auth app) ---------------------------------

AUTH_DATABASE_ENV = "DRIFTLOOP_MLFLOW_AUTH_DATABASE_URI"
REGISTRY_USER_ENVS = {  # account -> (username variable, password variable) the bootstrap reads
    "reader": ("DRIFTLOOP_MLFLOW_READER_USERNAME", "DRIFTLOOP_MLFLOW_READER_PASSWORD"),
    "writer": ("DRIFTLOOP_MLFLOW_WRITER_USERNAME", "DRIFTLOOP_MLFLOW_WRITER_PASSWORD"),
}
AUTH_CACHE_SECONDS = 60  # how long the MLflow server trusts a successful basic-auth sign-in without re-hashing


def write_auth_config(path: str | Path, database_uri: str) -> Path:
    """Write the ini of MLflow's basic-auth app: users in ``database_uri``, every signed-in user may READ.

    Anonymous requests are refused (401). A user that creates an experiment or a registered
    model manages it, so the writer (pipeline steps) owns what it registers and the reader
    (predictors) can read all of it but change nothing. The admin comes from
    ``MLFLOW_AUTH_ADMIN_USERNAME``/``MLFLOW_AUTH_ADMIN_PASSWORD`` when the server starts.

    Successful sign-ins are cached for :data:`AUTH_CACHE_SECONDS`: without it every request
    (a registration makes dozens) re-checks a scrypt password hash, tens of milliseconds of
    CPU each on a pod limited to one core. Passwords rotate with a restart (the init step
    re-applies them), which empties the per-process cache; a wrong password is never cached.

    >>> import tempfile
    >>> text = write_auth_config(Path(tempfile.mkdtemp()) / "auth.ini", "sqlite:////tmp/auth.db").read_text()
    >>> "default_permission = READ" in text, "database_uri = sqlite:////tmp/auth.db" in text, "auth_cache_ttl_seconds = 60" in text
    (True, True, True)
    """
    import configparser

    config = configparser.ConfigParser(interpolation=None)
    config["mlflow"] = {"default_permission": "READ", "database_uri": database_uri,
                        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
                        "auth_cache_ttl_seconds": str(AUTH_CACHE_SECONDS)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        config.write(handle)
    return path


def ensure_registry_users(database_uri: str, users: dict[str, str]) -> list[str]:
    """Create the auth store's tables and each ``username -> password`` that is missing; returns the created names.

    An existing user's password is set again, so rotating a secret and restarting applies it.
    Needs MLflow's ``auth`` extra (Flask-WTF).
    """
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(database_uri)
    created = []
    for username, password in users.items():
        if not username or len(password or "") < 12:  # MLflow's own minimum
            raise ConfigError(f"registry user {username!r}: empty name or a password shorter than 12 characters",
                              fix="set every DRIFTLOOP_MLFLOW_*_USERNAME/_PASSWORD secret key (passwords of 12+ characters)")
        if store.has_user(username):
            store.update_user(username, password=password)
        else:
            store.create_user(username, password)
            created.append(username)
    return created


def bootstrap_registry_auth(env: dict[str, str] | None = None) -> list[str]:
    """The MLflow pod's init step: write ``$MLFLOW_AUTH_CONFIG_PATH`` and create the reader and writer from the environment."""
    env = dict(os.environ) if env is None else env
    missing = [name for name in ("MLFLOW_AUTH_CONFIG_PATH", AUTH_DATABASE_ENV, *(v for pair in REGISTRY_USER_ENVS.values() for v in pair)) if not env.get(name)]
    if missing:
        raise ConfigError(f"registry auth bootstrap: {missing} not set", fix="mount the driftloop-mlflow secret keys into the MLflow pod (manifests/base/mlflow.yaml)")
    write_auth_config(env["MLFLOW_AUTH_CONFIG_PATH"], env[AUTH_DATABASE_ENV])
    return ensure_registry_users(env[AUTH_DATABASE_ENV], {env[u]: env[p] for u, p in REGISTRY_USER_ENVS.values()})

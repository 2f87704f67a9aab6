"""Render a working copy of the Feast repo for a work directory, local or production config.

The repo in git (``feature_repo/``) holds the definitions and two config templates. Each
work directory gets its own copy under ``<workdir>/feature_repo`` with absolute paths, so
tests and the demo never write into the git tree. Beside the copy, ``rendered.json`` tells
``definitions.py`` which sources to declare: parquet files (local) or PostgreSQL tables in
the shared offline store (production).

>>> import tempfile
>>> from pathlib import Path
>>> from components.settings import Settings
>>> s = Settings(workdir=Path(tempfile.mkdtemp()))
>>> repo = render_repo(s)
>>> sorted(p.name for p in repo.iterdir())
['definitions.py', 'feature_store.yaml', 'rendered.json']
>>> FeastOptions.from_env({"DRIFTLOOP_FEAST_PROJECT": "team_a"}).project
'team_a'
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from components.errors import ConfigError
from components.settings import Settings

SECRET = "driftloop-feast"  # the Kubernetes Secret that holds the production connection settings
# option field -> (environment variable, key in the driftloop-feast Secret, example value)
ENV: dict[str, tuple[str, str, str]] = {
    "registry_url": ("DRIFTLOOP_FEAST_REGISTRY_URL", "registry_url", "postgresql+psycopg2://USER:PASSWORD@HOST:5432/feast"),
    "redis": ("DRIFTLOOP_FEAST_REDIS", "redis_url", "redis-host:6379,password=... or redis://redis-host:6379/0"),
    "offline_url": ("DRIFTLOOP_FEAST_OFFLINE_URL", "offline_url", "postgresql://USER:PASSWORD@HOST:5432/feast"),
}
PROJECT_ENV = "DRIFTLOOP_FEAST_PROJECT"


@dataclass(frozen=True)
class FeastOptions:
    """Production-config servers and the Feast project name (one project per team or test).

    The defaults (servers on 127.0.0.1) serve tests and local runs that pass options
    explicitly; :meth:`from_env` never falls back to them for the production config.
    ``offline_url`` empty means "online only" (a transformer or feature server).
    """

    project: str = "driftloop"
    registry_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/feast"
    redis: str = "127.0.0.1:6379"  # Feast form: host:port[,db=N][,password=...]
    offline_url: str = "postgresql://postgres@127.0.0.1:5432/feast"  # the PostgreSQL offline store

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", self.project):
            raise ConfigError(f"Feast project {self.project!r} may hold only letters, digits and underscores", fix=f"rename {PROJECT_ENV}")
        if self.redis.startswith("redis://"):
            object.__setattr__(self, "redis", self.redis_from_url(self.redis))
        if self.offline_url:
            offline_store_config(self.offline_url)  # fail now, naming the variable, not inside Feast

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, production: bool = False, offline: bool = True) -> FeastOptions:
        """Read ``DRIFTLOOP_FEAST_PROJECT``, ``_REGISTRY_URL``, ``_REDIS`` and ``_OFFLINE_URL``.

        With ``production=True`` the servers must be set: a missing one is a
        :class:`ConfigError` naming the variable and the Secret key that fills it
        (``offline=False``: the offline URL may be missing, for online-only readers).

        >>> FeastOptions.from_env({"DRIFTLOOP_FEAST_REDIS": "redis://cache:6379/1"}).redis
        'cache:6379,db=1'
        >>> FeastOptions.from_env({}, production=True)
        Traceback (most recent call last):
        ...
        components.errors.ConfigError: DRIFTLOOP_FEAST_REGISTRY_URL is not set, and the production Feast config needs it (fix: add key registry_url to Secret driftloop-feast (the pods read it as DRIFTLOOP_FEAST_REGISTRY_URL), e.g. postgresql+psycopg2://USER:PASSWORD@HOST:5432/feast)
        """
        env = os.environ if env is None else env
        kwargs: dict[str, str] = {}
        if env.get(PROJECT_ENV):
            kwargs["project"] = env[PROJECT_ENV]
        for field, (var, key, example) in ENV.items():
            value = (env.get(var) or "").strip()
            if value:
                kwargs[field] = value
            elif field == "offline_url" and production and not offline:
                kwargs[field] = ""
            elif production:
                raise ConfigError(
                    f"{var} is not set, and the production Feast config needs it",
                    fix=f"add key {key} to Secret {SECRET} (the pods read it as {var}), e.g. {example}",
                )
        return cls(**kwargs)

    @staticmethod
    def redis_from_url(url: str) -> str:
        """Turn ``redis://host:port/db`` into Feast's ``host:port,db=N`` form.

        >>> FeastOptions.redis_from_url("redis://127.0.0.1:6379/2")
        '127.0.0.1:6379,db=2'
        """
        m = re.fullmatch(r"redis://([^/:]+)(?::(\d+))?(?:/(\d+))?", url)
        if not m:
            raise ConfigError(f"cannot read Redis URL {url!r}", fix="use redis://host:port/db")
        host, port, db = m.group(1), m.group(2) or "6379", m.group(3) or "0"
        return f"{host}:{port},db={db}"


def offline_store_config(url: str) -> dict[str, Any]:
    """Feast's ``offline_store`` section (``type: postgres``) for a ``postgresql://`` URL.

    >>> offline_store_config("postgresql://feast:s%40cret@db.example:5433/features?sslmode=require")
    {'type': 'postgres', 'host': 'db.example', 'port': 5433, 'database': 'features', 'db_schema': 'public', 'user': 'feast', 'password': 's@cret', 'sslmode': 'require'}
    """
    var = ENV["offline_url"][0]
    parts = urlsplit(url)
    fix = f"set {var} (Secret {SECRET} key offline_url) to postgresql://USER:PASSWORD@HOST:5432/DATABASE"
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres") or not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(f"{var} {_redact(url)!r} is not a postgresql://USER@HOST:PORT/DATABASE URL", fix=fix)
    try:
        port = parts.port or 5432
    except ValueError:
        raise ConfigError(f"{var} {_redact(url)!r} has a bad port", fix=fix) from None
    config: dict[str, Any] = {
        "type": "postgres",
        "host": parts.hostname,
        "port": port,
        "database": unquote(parts.path.strip("/")),
        "db_schema": "public",
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
    }
    sslmode = parse_qs(parts.query).get("sslmode")
    if sslmode:
        config["sslmode"] = sslmode[0]
    return config


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


def repo_dir(settings: Settings) -> Path:
    """The rendered repo of a work directory."""
    return settings.workdir / "feature_repo"


def feast_data_dir(settings: Settings) -> Path:
    """Where the local feature sources (``<scenario>_features.parquet``) and label logs live."""
    return settings.data_dir / "feast"


def table_name(project: str, scenario: str, kind: str) -> str:
    """The offline-store table of a scenario's ``features`` or ``labels`` in the production config.

    One table per scenario and project, so teams (and tests) can share a database.

    >>> table_name("Team_A", "churn", "features")
    'team_a_churn_features'
    """
    if kind not in ("features", "labels"):
        raise ValueError(f"kind must be 'features' or 'labels', not {kind!r}")
    name = f"{project}_{scenario}_{kind}".lower()  # unquoted SQL names fold to lower case
    if len(name) > 56:  # PostgreSQL cuts names at 63 characters; ingest stages into "_stage_<name>"
        raise ConfigError(f"Feast project {project!r} is too long for the offline-store table {name!r}", fix=f"shorten {PROJECT_ENV} to at most {56 - len(name) + len(project)} characters")
    return name


def rendered_settings(settings: Settings) -> dict[str, Any]:
    """What :func:`render_repo` wrote into ``rendered.json`` (empty if not rendered yet)."""
    path = repo_dir(settings) / "rendered.json"
    return json.loads(path.read_text()) if path.exists() else {}


def render_repo(settings: Settings, options: FeastOptions | None = None, *, offline: bool = True) -> Path:
    """Copy the definitions into ``<workdir>/feature_repo`` and write its ``feature_store.yaml``.

    ``settings.feast_config`` picks the template: ``local`` (file registry, SQLite online
    store, parquet sources, all under ``<workdir>``) or ``production`` (PostgreSQL registry,
    PostgreSQL offline store with a table per scenario, Redis online store, from
    ``options`` or the environment). ``offline=False`` lets a production reader that only
    serves online features go without ``DRIFTLOOP_FEAST_OFFLINE_URL``.
    """
    src = settings.feature_repo
    if not (src / "definitions.py").exists():
        raise ConfigError(f"no Feast repo at {src} (definitions.py missing)", fix="set DRIFTLOOP_FEATURE_REPO to the feature_repo directory")
    if settings.feast_config not in ("local", "production"):
        raise ConfigError(f"feast_config {settings.feast_config!r} is not 'local' or 'production'", fix="set DRIFTLOOP_FEAST_CONFIG=local or production")
    production = settings.feast_config == "production"
    options = options or FeastOptions.from_env(production=production, offline=offline)
    config = _config(settings, options)
    dest = repo_dir(settings)
    dest.mkdir(parents=True, exist_ok=True)
    for py in src.glob("*.py"):
        shutil.copyfile(py, dest / py.name)
    data = feast_data_dir(settings)
    if not production:
        data.mkdir(parents=True, exist_ok=True)
    pinned = {"sources": "postgres" if production else "file", "project": options.project, "data_dir": str(data)}
    (dest / "rendered.json").write_text(json.dumps(pinned, indent=1))
    (dest / "feature_store.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def _config(settings: Settings, options: FeastOptions) -> dict[str, Any]:
    production = settings.feast_config == "production"
    template = settings.feature_repo / ("feature_store.production.yaml" if production else "feature_store.yaml")
    values = {PROJECT_ENV: options.project, **{var: getattr(options, field) for field, (var, _, _) in ENV.items()}}
    text = re.sub(r"\$\{(\w+)\}", lambda m: json.dumps(values[m.group(1)]) if m.group(1) in values else m.group(0), template.read_text())
    config: dict[str, Any] = yaml.safe_load(text)
    if production:
        # the template names the store by URL; Feast wants host, port, database, user, password
        url = config.get("offline_store", {}).get("url", "")
        # online-only readers: Feast needs some offline store; offline calls re-render first
        config["offline_store"] = offline_store_config(url) if url else {"type": "file"}
        return config
    # local: absolute paths under the work directory; the project name may still vary
    state = settings.workdir / "feast"
    state.mkdir(parents=True, exist_ok=True)
    config["project"] = options.project
    config["registry"]["path"] = str(state / "registry.db")
    config["online_store"]["path"] = str(state / "online_store.db")
    return config

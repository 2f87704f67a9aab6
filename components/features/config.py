"""Render a working copy of the Feast repo for a work directory, local or production config.

The repo in git (``feature_repo/``) holds the definitions and two config templates. Each
work directory gets its own copy under ``<workdir>/feature_repo`` with absolute paths, so
tests and the demo never write into the git tree.

>>> import tempfile
>>> from pathlib import Path
>>> from components.settings import Settings
>>> s = Settings(workdir=Path(tempfile.mkdtemp()))
>>> repo = render_repo(s)
>>> sorted(p.name for p in repo.iterdir())
['data_dir.txt', 'definitions.py', 'feature_store.yaml']
>>> FeastOptions.from_env({"DRIFTLOOP_FEAST_PROJECT": "team_a"}).project
'team_a'
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.errors import ConfigError
from components.settings import Settings


@dataclass(frozen=True)
class FeastOptions:
    """Production-config servers and the Feast project name (one project per team or test)."""

    project: str = "driftloop"
    registry_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/feast"
    redis: str = "127.0.0.1:6379"  # Feast form: host:port[,db=N][,password=...]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", self.project):
            raise ConfigError(f"Feast project {self.project!r} may hold only letters, digits and underscores", fix="rename DRIFTLOOP_FEAST_PROJECT")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FeastOptions:
        """Read ``DRIFTLOOP_FEAST_PROJECT``, ``DRIFTLOOP_FEAST_REGISTRY_URL``, ``DRIFTLOOP_FEAST_REDIS``."""
        env = os.environ if env is None else env
        names = {"project": "DRIFTLOOP_FEAST_PROJECT", "registry_url": "DRIFTLOOP_FEAST_REGISTRY_URL", "redis": "DRIFTLOOP_FEAST_REDIS"}
        return cls(**{k: env[v] for k, v in names.items() if env.get(v)})

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


def repo_dir(settings: Settings) -> Path:
    """The rendered repo of a work directory."""
    return settings.workdir / "feature_repo"


def feast_data_dir(settings: Settings) -> Path:
    """Where the feature sources (``<scenario>_features.parquet``) and label logs live."""
    return settings.data_dir / "feast"


def render_repo(settings: Settings, options: FeastOptions | None = None) -> Path:
    """Copy the definitions into ``<workdir>/feature_repo`` and write its ``feature_store.yaml``.

    ``settings.feast_config`` picks the template: ``local`` (file registry, SQLite online
    store, both under ``<workdir>/feast``) or ``production`` (PostgreSQL registry, Redis
    online store, from ``options`` or the environment).
    """
    src = settings.feature_repo
    if not (src / "definitions.py").exists():
        raise ConfigError(f"no Feast repo at {src} (definitions.py missing)", fix="set DRIFTLOOP_FEATURE_REPO to the feature_repo directory")
    if settings.feast_config not in ("local", "production"):
        raise ConfigError(f"feast_config {settings.feast_config!r} is not 'local' or 'production'", fix="set DRIFTLOOP_FEAST_CONFIG=local or production")
    dest = repo_dir(settings)
    dest.mkdir(parents=True, exist_ok=True)
    for py in src.glob("*.py"):
        shutil.copyfile(py, dest / py.name)
    data = feast_data_dir(settings)
    data.mkdir(parents=True, exist_ok=True)
    (dest / "data_dir.txt").write_text(str(data))
    (dest / "feature_store.yaml").write_text(yaml.safe_dump(_config(settings, options or FeastOptions.from_env()), sort_keys=False))
    return dest


def _config(settings: Settings, options: FeastOptions) -> dict[str, Any]:
    production = settings.feast_config == "production"
    template = settings.feature_repo / ("feature_store.production.yaml" if production else "feature_store.yaml")
    values = {"DRIFTLOOP_FEAST_PROJECT": options.project, "DRIFTLOOP_FEAST_REGISTRY_URL": options.registry_url, "DRIFTLOOP_FEAST_REDIS": options.redis}
    text = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template.read_text())
    config: dict[str, Any] = yaml.safe_load(text)
    if production:
        return config
    # local: absolute paths under the work directory; the project name may still vary
    state = settings.workdir / "feast"
    state.mkdir(parents=True, exist_ok=True)
    config["project"] = options.project
    config["registry"]["path"] = str(state / "registry.db")
    config["online_store"]["path"] = str(state / "online_store.db")
    return config

"""Open the rendered Feast store, ingest scenario data into its sources, apply, materialize.

Sources are parquet files in the work directory (local config) or tables in the shared
PostgreSQL offline store (production config, :mod:`components.features.tables`), so on a
cluster every pod sees what one pod ingested. Feast is imported inside the functions (it
pulls in dask and more). Server and repo failures become
:class:`~components.errors.DriftloopError` subclasses naming the fix.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from components.data.scenarios import get_spec
from components.errors import ConfigError, DataError, ServiceUnavailable
from components.features import tables
from components.features.config import (
    FeastOptions,
    feast_data_dir,
    render_repo,
    rendered_settings,
    repo_dir,
    table_name,
)
from components.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore

T = TypeVar("T")


def features_path(name: str, settings: Settings) -> Path:
    """The feature source of scenario ``name`` (what its Feast FileSource reads)."""
    return feast_data_dir(settings) / f"{name}_features.parquet"


def labels_path(name: str, settings: Settings) -> Path:
    """The label log of scenario ``name``: entity, event time, label, label time."""
    return feast_data_dir(settings) / f"{name}_labels.parquet"


def _connection_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "a server is unreachable" (PostgreSQL registry and offline store, Redis online store)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import psycopg

        errors.append(psycopg.OperationalError)
    except ImportError:  # pragma: no cover - psycopg is only needed for the production config
        pass
    try:
        import redis.exceptions

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover - redis is only needed for the production config
        pass
    try:
        import sqlalchemy.exc

        errors.append(sqlalchemy.exc.OperationalError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


@contextmanager
def _servers(what: str) -> Iterator[None]:
    """Turn connection failures of PostgreSQL / Redis into one readable error."""
    try:
        yield
    except _connection_errors() as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ServiceUnavailable(
            f"Feast could not reach its server while trying to {what}: {type(exc).__name__}: {first}",
            fix="start PostgreSQL (registry, offline store) and Redis (online store), or use DRIFTLOOP_FEAST_CONFIG=local",
        ) from None


def _production(settings: Settings) -> bool:
    return settings.feast_config == "production"


def _ensure_rendered(settings: Settings, options: FeastOptions | None = None, offline: bool = True) -> Path:
    """Render the repo unless it is there; re-render a production repo that lacks the offline store when one is needed."""
    repo = repo_dir(settings)
    config = repo / "feature_store.yaml"
    if options is not None or not config.exists() or not (repo / "rendered.json").exists():
        return render_repo(settings, options, offline=offline)
    if offline and _production(settings) and offline_config(settings, render=False) is None:
        # rendered online-only (no DRIFTLOOP_FEAST_OFFLINE_URL then): it must be set now
        return render_repo(settings, None, offline=True)
    return repo


def offline_config(settings: Settings, render: bool = True) -> dict[str, Any] | None:
    """The rendered production ``offline_store`` section (PostgreSQL), or None if it has none."""
    import yaml

    if render:
        _ensure_rendered(settings)
    path = repo_dir(settings) / "feature_store.yaml"
    section = (yaml.safe_load(path.read_text()) or {}).get("offline_store") or {} if path.exists() else {}
    return section if section.get("type") == "postgres" else None


def open_store(settings: Settings, options: FeastOptions | None = None, *, offline: bool = False) -> FeatureStore:
    """The work directory's FeatureStore, rendering the repo first if it is not there yet.

    ``offline=True`` (training sets, materialization) makes sure a production repo has its
    PostgreSQL offline store; online readers (the transformer) need only registry and Redis.
    """
    from feast import FeatureStore

    repo = _ensure_rendered(settings, options, offline=offline)
    with _servers("open the registry"):
        return FeatureStore(repo_path=str(repo))


def _table(settings: Settings, name: str, kind: str) -> str:
    return table_name(rendered_settings(settings)["project"], name, kind)


def _offline(settings: Settings) -> dict[str, Any]:
    config = offline_config(settings)
    assert config is not None  # render_repo(offline=True) either wrote one or raised
    return config


def _load_definitions(repo: Path) -> list[Any]:
    """Import the rendered repo's Python files and collect the Feast objects they define."""
    from feast import Entity, FeatureService, FeatureView

    objects: dict[int, Any] = {}
    for py in sorted(repo.glob("*.py")):
        module_name = f"_driftloop_feature_repo_{abs(hash(str(py)))}"
        spec = importlib.util.spec_from_file_location(module_name, py)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(f"Feast repo file {py.name} failed to load: {type(exc).__name__}: {exc}", fix=f"fix {py.name} in the feature_repo directory") from None
        finally:
            sys.modules.pop(module_name, None)
        for value in vars(module).values():
            if isinstance(value, Entity | FeatureView | FeatureService):
                objects[id(value)] = value
            elif isinstance(value, dict):
                objects.update({id(v): v for v in value.values() if isinstance(v, Entity | FeatureView | FeatureService)})
    if not objects:
        raise ConfigError(f"the Feast repo at {repo} defines no entities, feature views or services", fix="check feature_repo/definitions.py")
    return list(objects.values())


def apply(settings: Settings, options: FeastOptions | None = None) -> list[str]:
    """Render the repo for this work directory and register its definitions; return their names.

    Sources need not hold data yet: ingest and materialize afterwards.
    """
    repo = render_repo(settings, options)
    objects = _load_definitions(repo)
    store = open_store(settings, offline=True)
    with _servers("apply the repo"):
        try:
            store.apply(objects)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"Feast rejected the repo definitions: {exc}", fix="fix feature_repo/definitions.py") from None
    return sorted(o.name for o in objects)


def ingest(name: str, settings: Settings, frame: pd.DataFrame | None = None, append: bool = False) -> str:
    """Write scenario rows into the feature source and label log of ``name``; return where.

    Local config: ``<data_dir>/feast/<name>_{features,labels}.parquet``. Production config:
    the tables ``<project>_<name>_features`` and ``<project>_<name>_labels`` of the
    PostgreSQL offline store (``DRIFTLOOP_FEAST_OFFLINE_URL``); the returned string names
    the features table as ``postgresql://host:port/database/table``.
    ``frame`` defaults to ``<data_dir>/<name>.parquet`` (``driftloop scenario NAME --out
    <data_dir>``). ``append`` adds newer rows to what is there (a later value for the same
    entity and time replaces the earlier one), which is how a stream arrives.
    """
    spec = get_spec(name)
    if frame is None:
        raw = settings.data_dir / f"{name}.parquet"
        if not raw.exists():
            raise DataError(f"no data for scenario {name!r} at {raw}", fix=f"run: driftloop scenario {name} --out {settings.data_dir}")
        frame = pd.read_parquet(raw)
    feature_cols = [spec.entity, spec.timestamp, *spec.features, *spec.categorical_features]
    if spec.segment and spec.segment not in feature_cols:
        feature_cols.append(spec.segment)
    label_cols = [spec.entity, spec.timestamp, spec.label, "label_timestamp"]
    missing = sorted(set(feature_cols + label_cols) - set(frame.columns))
    if missing:
        raise DataError(f"scenario {name!r} data lacks columns {missing}", fix="regenerate it with driftloop scenario or add the columns")
    feats, labels = frame[feature_cols].copy(), frame[label_cols].copy()
    feats[spec.timestamp] = pd.to_datetime(feats[spec.timestamp], utc=True)
    for col in (spec.timestamp, "label_timestamp"):
        labels[col] = pd.to_datetime(labels[col], utc=True)
    for col in spec.categorical_features + ((spec.segment,) if spec.segment else ()):
        # Feast String features; a missing value stays missing (astype(str) would store the text "nan")
        feats[col] = feats[col].astype("string").astype(object).where(feats[col].notna(), None)
    if _production(settings):
        config = _offline(settings)
        keys = [spec.entity, spec.timestamp]
        with _servers(f"ingest {name} into the offline store"):
            tables.write_table(config, _table(settings, name, "features"), feats, keys, append=append)
            tables.write_table(config, _table(settings, name, "labels"), labels, keys, append=append)
        return f"postgresql://{config['host']}:{config['port']}/{config['database']}/{_table(settings, name, 'features')}"
    out = features_path(name, settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    for table, path in ((feats, out), (labels, labels_path(name, settings))):
        if append and path.exists():
            table = pd.concat([pd.read_parquet(path), table], ignore_index=True)
            table = table.drop_duplicates([spec.entity, spec.timestamp], keep="last")
        table.sort_values(spec.timestamp, kind="stable").to_parquet(path, index=False)
    return str(out)


def read_labels(name: str, settings: Settings, start: pd.Timestamp, end: pd.Timestamp, known_by: pd.Timestamp) -> pd.DataFrame:
    """Label events of ``name`` with event time in ``[start, end)`` whose label was known by ``known_by``.

    From the label log (local parquet, or the PostgreSQL labels table in production).
    """
    ts = get_spec(name).timestamp
    if _production(settings):
        with _servers(f"read the {name} labels"):
            labels = tables.read_table(_offline(settings), _table(settings, name, "labels"), f'"{ts}" >= %s AND "{ts}" < %s AND label_timestamp <= %s', [start, end, known_by])
        if labels is None:
            raise DataError(f"no labels ingested for {name!r} (table {_table(settings, name, 'labels')} is missing)", fix=f"run: driftloop features ingest {name}")
        return labels.sort_values([ts], kind="stable", ignore_index=True)
    path = labels_path(name, settings)
    if not path.exists():
        raise DataError(f"no labels ingested for {name!r} at {path}", fix=f"run: driftloop features ingest {name}")
    labels = pd.read_parquet(path)
    return labels[(labels[ts] >= start) & (labels[ts] < end) & (labels["label_timestamp"] <= known_by)]


def first_feature_time(name: str, settings: Settings) -> pd.Timestamp:
    """The earliest event time ingested for ``name`` (``DataError`` if nothing was)."""
    ts = get_spec(name).timestamp
    first: Any = None
    if _production(settings):
        with _servers(f"read the {name} features"):
            first = tables.min_value(_offline(settings), _table(settings, name, "features"), ts)
    elif features_path(name, settings).exists():
        first = pd.read_parquet(features_path(name, settings), columns=[ts]).iloc[:, 0].min()
    if first is None or pd.isna(first):
        raise DataError(f"no feature data ingested for scenario {name!r}", fix=f"run: driftloop features ingest {name}")
    return _utc(first)


def _view(store: FeatureStore, name: str) -> Any:
    try:
        return store.get_feature_view(f"{name}_features")
    except Exception:
        raise ConfigError(f"feature view '{name}_features' is not registered", fix="run: driftloop features apply") from None


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def materialize(name: str, start: Any, end: Any, settings: Settings) -> None:
    """Load feature values with event times in ``[start, end]`` into the online store."""
    store = open_store(settings, offline=True)
    _run(lambda: store.materialize(_utc(start).to_pydatetime(), _utc(end).to_pydatetime(), feature_views=[_view(store, name).name]), name, settings, "materialize")


def materialize_incremental(name: str, end: Any, settings: Settings) -> None:
    """Load feature values newer than the last materialization (up to ``end``) into the online store.

    The first time, it loads everything ingested (Feast alone would start at now - ttl,
    which misses historical scenario data).
    """
    store = open_store(settings, offline=True)
    view = _view(store, name)
    if view.most_recent_end_time is None:
        materialize(name, first_feature_time(name, settings), end, settings)
        return
    _run(lambda: store.materialize_incremental(_utc(end).to_pydatetime(), feature_views=[view.name]), name, settings, "materialize")


def _run(call: Callable[[], T], name: str, settings: Settings, what: str) -> T:
    first_feature_time(name, settings)  # DataError naming the ingest command when there is nothing
    with _servers(what):
        return call()

"""Open the rendered Feast store, ingest scenario data into its sources, apply, materialize.

Feast is imported inside the functions (it pulls in dask and more). Server and repo
failures become :class:`~components.errors.DriftloopError` subclasses naming the fix.
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
from components.features.config import FeastOptions, feast_data_dir, render_repo, repo_dir
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
    """Exception types that mean "a server is unreachable" (PostgreSQL registry, Redis online store)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
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
            fix="start PostgreSQL (registry) and Redis (online store), or use DRIFTLOOP_FEAST_CONFIG=local",
        ) from None


def open_store(settings: Settings, options: FeastOptions | None = None) -> FeatureStore:
    """The work directory's FeatureStore, rendering the repo first if it is not there yet."""
    from feast import FeatureStore

    repo = repo_dir(settings)
    if options is not None or not (repo / "feature_store.yaml").exists():
        render_repo(settings, options)
    with _servers("open the registry"):
        return FeatureStore(repo_path=str(repo))


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
    store = open_store(settings)
    with _servers("apply the repo"):
        try:
            store.apply(objects)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"Feast rejected the repo definitions: {exc}", fix="fix feature_repo/definitions.py") from None
    return sorted(o.name for o in objects)


def ingest(name: str, settings: Settings, frame: pd.DataFrame | None = None, append: bool = False) -> Path:
    """Write scenario rows into the feature source and label log of ``name``.

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
        feats[col] = feats[col].astype(str)  # Feast String features
    out = features_path(name, settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    for table, path in ((feats, out), (labels, labels_path(name, settings))):
        if append and path.exists():
            table = pd.concat([pd.read_parquet(path), table], ignore_index=True)
            table = table.drop_duplicates([spec.entity, spec.timestamp], keep="last")
        table.sort_values(spec.timestamp, kind="stable").to_parquet(path, index=False)
    return out


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
    store = open_store(settings)
    _run(lambda: store.materialize(_utc(start).to_pydatetime(), _utc(end).to_pydatetime(), feature_views=[_view(store, name).name]), name, settings, "materialize")


def materialize_incremental(name: str, end: Any, settings: Settings) -> None:
    """Load feature values newer than the last materialization (up to ``end``) into the online store.

    The first time, it loads everything ingested (Feast alone would start at now - ttl,
    which misses historical scenario data).
    """
    store = open_store(settings)
    view = _view(store, name)
    if view.most_recent_end_time is None:
        path = features_path(name, settings)
        if not path.exists():
            raise DataError(f"no feature data ingested for scenario {name!r}", fix=f"run: driftloop features ingest {name}")
        first = pd.read_parquet(path, columns=[get_spec(name).timestamp]).iloc[:, 0].min()
        materialize(name, first, end, settings)
        return
    _run(lambda: store.materialize_incremental(_utc(end).to_pydatetime(), feature_views=[view.name]), name, settings, "materialize")


def _run(call: Callable[[], T], name: str, settings: Settings, what: str) -> T:
    if not features_path(name, settings).exists():
        raise DataError(f"no feature data ingested for scenario {name!r}", fix=f"run: driftloop features ingest {name}")
    with _servers(what):
        return call()

"""Training sets (point-in-time correct, from the offline store) and online feature lookups.

Both are keyed by the policy: its ``feature_service`` names what to fetch, its entity,
timestamp, label and segment column shape the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from components.errors import ConfigError, DataError
from components.features.store import _servers, _utc, open_store, read_labels
from components.policy import Policy
from components.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore


def _scenario(policy: Policy) -> str:
    return policy.scenario or policy.model


def _service(store: FeatureStore, policy: Policy) -> Any:
    if not policy.feature_service:
        raise ConfigError(f"policy {policy.model!r} has no feature_service", fix="add feature_service: <name>_v1 to the policy")
    with _servers("read the registry"):
        try:
            return store.get_feature_service(policy.feature_service)
        except Exception as exc:
            if "FeatureServiceNotFound" not in type(exc).__name__ and "not found" not in str(exc).lower():
                raise
            known = sorted(s.name for s in store.list_feature_services())
            raise ConfigError(
                f"feature service {policy.feature_service!r} is not registered (known: {', '.join(known) or 'none'})",
                fix="run 'driftloop features apply' or correct feature_service in the policy",
            ) from None


def _columns(policy: Policy) -> list[str]:
    cols = [*policy.features, *policy.categorical_features]
    seg = policy.segment_column
    return cols + [seg] if seg and seg not in cols else cols


def _check_cohort(policy: Policy, cohort: str | None) -> None:
    if cohort is None:
        return
    if policy.segments is None:
        raise ConfigError(f"cohort {cohort!r} given but policy {policy.model!r} has no segments", fix="drop the cohort or add segments.column to the policy")
    if cohort not in policy.segments.values:
        raise ConfigError(f"cohort {cohort!r} is not one of {policy.segments.column} values {policy.segments.values}", fix="pass one of the policy's segment values")


def training_set(
    policy: Policy,
    start: Any,
    end: Any,
    cohort: str | None = None,
    settings: Settings | None = None,
    known_by: Any = None,
) -> pd.DataFrame:
    """Labelled rows with event time in ``[start, end)``, features joined point-in-time by Feast.

    The entity rows are the label events of the window whose label was known by
    ``known_by`` (default ``end``), so a retrain "now" never sees labels from the future.
    Each row gets the feature values as of its event time, never later ones. ``cohort``
    keeps one value of the policy's segment column. Columns: entity, timestamp, features,
    categorical features, segment column, label; sorted by timestamp.
    """
    settings = settings or Settings.from_env()
    _check_cohort(policy, cohort)
    name = _scenario(policy)
    t0, t1 = _utc(start), _utc(end)
    cutoff = _utc(known_by) if known_by is not None else t1
    rows = read_labels(name, settings, t0, t1, cutoff)
    if rows.empty:
        raise DataError(f"no labelled {name} rows with {policy.timestamp} in [{t0}, {t1}) known by {cutoff}", fix="widen the window or ingest newer data")
    store = open_store(settings, offline=True)
    service = _service(store, policy)
    entity_df = rows[[policy.entity, policy.timestamp, policy.label]].reset_index(drop=True)
    with _servers("build a training set"):
        joined = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    out = joined[[policy.entity, policy.timestamp, *_columns(policy), policy.label]].copy()
    # one dtype whatever the offline store (PostgreSQL hands back naive UTC in microseconds)
    out[policy.timestamp] = pd.to_datetime(out[policy.timestamp], utc=True).astype("datetime64[ns, UTC]")
    if cohort is not None:
        out = out[out[policy.segment_column] == cohort]
    return out.sort_values([policy.timestamp, policy.entity], kind="stable", ignore_index=True)


def online_features(policy: Policy, entity_ids: Iterable[Any], settings: Settings | None = None, store: FeatureStore | None = None) -> pd.DataFrame:
    """The latest materialized features of each entity id from the online store.

    One row per id, in order: the entity column, features, categorical features, segment
    column (missing values where an id has no materialized row). Pass ``store`` (from
    :func:`components.features.store.open_store`) to reuse one across calls.
    """
    ids = [int(i) for i in entity_ids]
    if not ids:
        raise DataError("no entity ids given", fix=f"pass at least one {policy.entity}")
    store = store or open_store(settings or Settings.from_env())
    service = _service(store, policy)
    with _servers("read the online store"):
        frame = store.get_online_features(features=service, entity_rows=[{policy.entity: i} for i in ids]).to_df()
    return frame[[policy.entity, *_columns(policy)]]

"""driftloop's Feast repository: one entity, source, feature view and versioned feature
service per seed scenario (``churn_v1`` ... ``concept_v1``, named as in ``policies/*.yaml``).

Sources follow ``rendered.json`` next to this file (written when driftloop renders a working
copy of the repo for a work directory, components.features.render_repo):
- ``"sources": "postgres"`` (production config): a ``PostgreSQLSource`` per scenario, the
  table ``<project>_<scenario>_features`` of the shared offline store;
- otherwise parquet ``FileSource``s in the data directory: ``data_dir`` of rendered.json,
  the ``DRIFTLOOP_FEAST_DATA_DIR`` environment variable, or ``./data`` beside this file.
Each source holds the entity, ``event_timestamp``, the features, categorical features
(strings) and segment/cohort column; labels are kept apart (a parquet file or the table
``<project>_<scenario>_labels``) and joined point-in-time by driftloop.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String


def _rendered() -> dict[str, Any]:
    pinned = Path(__file__).with_name("rendered.json")
    return json.loads(pinned.read_text()) if pinned.exists() else {}


RENDERED = _rendered()
DATA_DIR = Path(RENDERED.get("data_dir") or os.environ.get("DRIFTLOOP_FEAST_DATA_DIR") or Path(__file__).with_name("data"))

# scenario -> (entity, ttl, numeric int columns, numeric float columns, string columns)
SCHEMAS: dict[str, tuple[str, timedelta, list[str], list[str], list[str]]] = {
    "churn": (
        "customer_id",
        timedelta(days=62),
        ["tenure_months", "support_calls", "num_products"],
        ["monthly_charges", "total_charges"],
        ["contract", "region"],
    ),
    "credit": (
        "applicant_id",
        timedelta(days=62),
        ["credit_history_months", "num_delinquencies"],
        ["income", "debt_to_income", "loan_amount", "utilization"],
        ["employment", "segment"],
    ),
    "fraud": (
        "transaction_id",
        timedelta(days=2),
        ["velocity_1h", "hour_of_day"],
        ["amount", "distance_from_home_km", "merchant_risk"],
        ["merchant_category", "channel"],
    ),
    "recsys": (
        "user_id",
        timedelta(days=30),
        ["position", "user_tenure_days"],
        ["item_price", "item_popularity"],
        ["item_category", "device", "user_cohort"],
    ),
    "concept": (
        "session_id",
        timedelta(days=2),
        ["pages_viewed"],
        ["session_length", "basket_value", "discount"],
        ["region", "daypart"],
    ),
}


def source_path(scenario: str) -> Path:
    """Where a scenario's feature rows are read from (file sources)."""
    return DATA_DIR / f"{scenario}_features.parquet"


def source(scenario: str) -> Any:
    """The batch source of a scenario: its table in the PostgreSQL offline store, or a parquet file."""
    if RENDERED.get("sources") == "postgres":
        from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
            PostgreSQLSource,
        )

        # same name as components.features.config.table_name (this file is copied alone)
        table = f"{RENDERED['project']}_{scenario}_features".lower()
        return PostgreSQLSource(name=f"{scenario}_source", table=table, timestamp_field="event_timestamp")
    return FileSource(name=f"{scenario}_source", path=str(source_path(scenario)), timestamp_field="event_timestamp")


entities: dict[str, Entity] = {}
views: dict[str, FeatureView] = {}
services: dict[str, FeatureService] = {}
for _name, (_key, _ttl, _ints, _floats, _strings) in SCHEMAS.items():
    entities[_name] = Entity(name=_key.removesuffix("_id"), join_keys=[_key], value_type=ValueType.INT64, description=f"{_name} entity")
    views[_name] = FeatureView(
        name=f"{_name}_features",
        entities=[entities[_name]],
        ttl=_ttl,
        schema=[Field(name=c, dtype=Int64) for c in _ints]
        + [Field(name=c, dtype=Float64) for c in _floats]
        + [Field(name=c, dtype=String) for c in _strings],
        source=source(_name),
        online=True,
        tags={"scenario": _name},
    )
    services[_name] = FeatureService(name=f"{_name}_v1", features=[views[_name]], tags={"model": _name, "version": "1"})

# module-level names so `feast apply` in this directory finds every object
churn_features, credit_features, fraud_features, recsys_features, concept_features = views.values()
churn_v1, credit_v1, fraud_v1, recsys_v1, concept_v1 = services.values()

"""Upstream feature events: a drifted feature view told once to every model that reads it.

A feature view is read by the models whose policy names a Feast feature service that
projects the view (``policy.feature_service``). When a materialized batch of a view drifts
or fails a quality check, :func:`record_upstream_event` writes ONE event (view, window,
features, every affected model) to ``<workdir>/upstream.db`` and puts it in each affected
model's inbox; the model's next decision reads :func:`upstream_reasons` and, once it has
acted on them, :func:`acknowledge_upstream` empties the inbox. Recording the same view
and window again replaces the event (a re-run does not tell a model twice).

>>> import tempfile
>>> from pathlib import Path
>>> from components.settings import Settings
>>> settings = Settings(workdir=Path(tempfile.mkdtemp()))
>>> services = {"churn_v1": {"churn_features": ["monthly_charges", "contract", "region"]},
...             "retention_v1": {"churn_features": ["monthly_charges"]}}
>>> readers = readers_of("churn_features", services, {"churn": "churn_v1", "retention": "retention_v1", "fraud": "fraud_v1"})
>>> readers
{'churn': ['monthly_charges', 'contract', 'region'], 'retention': ['monthly_charges']}
>>> event = record_upstream_event("churn_features", ["monthly_charges", "contract"], readers,
...                               {"start": "2025-06-01", "end": "2025-07-01"}, settings)
>>> event["models"]
['churn', 'retention']
>>> upstream_reasons("churn", settings)
['upstream feature drift in churn_features: monthly_charges, contract']
>>> upstream_reasons("retention", settings.workdir)  # a work directory will do, e.g. a decision ledger's folder
['upstream feature drift in churn_features: monthly_charges']
>>> acknowledge_upstream("churn", settings), upstream_reasons("churn", settings)
(1, [])
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.settings import Settings

if TYPE_CHECKING:
    from components.policy import Policy

DB_NAME = "upstream.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS upstream_events (
    id TEXT PRIMARY KEY, view TEXT NOT NULL, window_start TEXT, window_end TEXT,
    features TEXT NOT NULL, models TEXT NOT NULL, detail TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS upstream_inbox (
    model TEXT NOT NULL, event_id TEXT NOT NULL, features TEXT NOT NULL, acknowledged INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (model, event_id));
"""


def readers_of(view: str, services: Mapping[str, Mapping[str, Sequence[str]]], model_services: Mapping[str, str | None]) -> dict[str, list[str]]:
    """Model -> the features of ``view`` it reads, for every model whose feature service projects ``view``.

    ``services``: feature service -> {feature view -> features projected}; ``model_services``:
    model -> its policy's ``feature_service`` (None: it reads no service).
    """
    out: dict[str, list[str]] = {}
    for model, service in sorted(model_services.items()):
        features = services.get(service or "", {}).get(view)
        if features:
            out[model] = list(features)
    return out


def feature_services(settings: Settings) -> dict[str, dict[str, list[str]]]:
    """Feature service -> {feature view -> features it projects}, from the work directory's Feast registry."""
    from components.features import open_store

    store = open_store(settings)
    return {s.name: {p.name: [f.name for f in p.features] for p in s.feature_view_projections} for s in store.list_feature_services()}


def model_services(policy_dir: Path | None = None) -> dict[str, str | None]:
    """Model -> ``feature_service`` of every policy in ``policy_dir`` (default: the bundled ``policies/``)."""
    from components.policy import load_policy
    from components.settings import POLICY_DIR

    policies: list[Policy] = [load_policy(p) for p in sorted((policy_dir or POLICY_DIR).glob("*.yaml"))]
    return {p.model: p.feature_service for p in policies}


def _workdir(where: Settings | Path) -> Path:
    """The work directory of ``where`` (its Settings, or the directory itself, e.g. a decision ledger's folder)."""
    return where.workdir if isinstance(where, Settings) else Path(where)


@contextmanager
def _db(where: Settings | Path) -> Iterator[sqlite3.Connection]:
    _workdir(where).mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(_workdir(where) / DB_NAME, timeout=30)) as conn, conn:
        conn.executescript(_SCHEMA)
        yield conn


def record_upstream_event(view: str, features: Sequence[str], readers: Mapping[str, Sequence[str]], window: Mapping[str, Any],
                          settings: Settings, detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write one event for ``view``'s drifted ``features`` naming every model in ``readers`` that reads one of them.

    Each such model's inbox gets the event with the drifted features it reads. Returns the
    event (``models`` empty when no model reads a drifted feature; nothing is written then).
    """
    affected = {m: [f for f in features if f in set(read)] for m, read in readers.items()}
    affected = {m: fs for m, fs in sorted(affected.items()) if fs}
    start, end = (str(window.get("start")), str(window.get("end")))
    event = {"id": f"{view}@{start}..{end}", "view": view, "window": {"start": start, "end": end}, "features": list(features),
             "models": list(affected), "detail": dict(detail or {}), "created_at": datetime.now(UTC).isoformat()}
    if not affected:
        return event
    with _db(settings) as conn:
        conn.execute("DELETE FROM upstream_inbox WHERE event_id = ?", (event["id"],))
        conn.execute("INSERT OR REPLACE INTO upstream_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (event["id"], view, start, end, json.dumps(event["features"]), json.dumps(event["models"]), json.dumps(event["detail"], default=str), event["created_at"]))
        conn.executemany("INSERT INTO upstream_inbox (model, event_id, features) VALUES (?, ?, ?)", [(m, event["id"], json.dumps(fs)) for m, fs in affected.items()])
    return event


def upstream_events(model: str, settings: Settings | Path) -> list[dict[str, Any]]:
    """The events in ``model``'s inbox not yet acknowledged, oldest first (``settings``: Settings or the work directory)."""
    if not (_workdir(settings) / DB_NAME).exists():
        return []
    with _db(settings) as conn:
        rows = conn.execute(
            "SELECT e.id, e.view, e.window_start, e.window_end, i.features FROM upstream_inbox i JOIN upstream_events e ON e.id = i.event_id "
            "WHERE i.model = ? AND i.acknowledged = 0 ORDER BY e.created_at, e.id", (model,)).fetchall()
    return [{"id": r[0], "view": r[1], "window": {"start": r[2], "end": r[3]}, "features": json.loads(r[4])} for r in rows]


def upstream_reasons(model: str, settings: Settings | Path) -> list[str]:
    """Reason lines for ``model``'s next decision, e.g. ``"upstream feature drift in churn_features: monthly_charges"``."""
    return [f"upstream feature drift in {e['view']}: {', '.join(e['features'])}" for e in upstream_events(model, settings)]


def acknowledge_upstream(model: str, settings: Settings | Path) -> int:
    """Mark ``model``'s pending events as seen by a decision; return how many there were."""
    if not (_workdir(settings) / DB_NAME).exists():
        return 0
    with _db(settings) as conn:
        return conn.execute("UPDATE upstream_inbox SET acknowledged = 1 WHERE model = ? AND acknowledged = 0", (model,)).rowcount


__all__ = ["acknowledge_upstream", "feature_services", "model_services", "readers_of", "record_upstream_event", "upstream_events", "upstream_reasons"]

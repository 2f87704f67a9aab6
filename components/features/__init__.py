"""The Feast feature store: render the repo per work directory, ingest, apply, materialize,
point-in-time training sets and online lookups.

Public API (see docs/architecture.md): :func:`apply`, :func:`ingest`, :func:`materialize`,
:func:`materialize_incremental`, :func:`training_set`, :func:`online_features`,
:func:`open_store`, :func:`render_repo`, :class:`FeastOptions`.
"""

from components.features.config import FeastOptions, render_repo
from components.features.retrieval import online_features, training_set
from components.features.store import (
    apply,
    ingest,
    materialize,
    materialize_incremental,
    open_store,
)

__all__ = ["FeastOptions", "apply", "ingest", "materialize", "materialize_incremental", "online_features", "open_store", "render_repo", "training_set"]

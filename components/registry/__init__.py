"""The MLflow model registry: one experiment and one registered model per policy.

Parts: :mod:`.store` (MLflow client, errors, version lookups), :mod:`.registration`
(log and register once), :mod:`.aliases` (champion/challenger moves and their audit),
:mod:`.artifacts` (the model, baseline, reference sample and profile read back).
:class:`ModelRegistry` is all four; import everything from ``components.registry``.

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

from components.registry.aliases import Aliases
from components.registry.artifacts import Artifacts
from components.registry.registration import Registration
from components.registry.store import (
    AUDIT_PREFIX,
    BASELINE_FILE,
    CHALLENGER,
    CHAMPION,
    KEY_TAG,
    PROFILE_FILE,
    REFERENCE_FILE,
    VERDICT_FILE,
    MlflowStore,
    ModelVersionInfo,
)

__all__ = ["AUDIT_PREFIX", "BASELINE_FILE", "CHALLENGER", "CHAMPION", "KEY_TAG", "PROFILE_FILE", "REFERENCE_FILE", "VERDICT_FILE",
           "MlflowStore", "ModelRegistry", "ModelVersionInfo"]


class ModelRegistry(Registration, Aliases, Artifacts):
    """Register, look up, load and promote model versions in MLflow (``settings.mlflow_tracking_uri``)."""

"""Checks run before compile / submit, so a bad policy fails on the laptop, not in a pod.

>>> check_policy("churn").startswith("# churn")
True
>>> check_policy("nope")
Traceback (most recent call last):
...
components.errors.ConfigError: policy file 'nope' not found (fix: give a path to a YAML file or one of: ...)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from components.errors import ConfigError


def check_policy(policy: str, feature_repo: Path | None = None) -> str:
    """Validate ``policy`` (name, path or YAML text) and return the YAML text to send as a parameter.

    The schema check rejects unknown features in monitors, unknown monitors in actions and
    unknown keys (see :mod:`components.policy`); then every feature the policy names must
    be served by its Feast feature service (``feature_repo/definitions.py``).
    """
    from components.policy import policy_text, resolve_policy

    text = policy if "\n" in policy else policy_text(policy)
    check_feature_service(resolve_policy(text), feature_repo)
    return text


def check_feature_service(policy: Any, feature_repo: Path | None = None) -> None:
    """Raise ConfigError if the policy's feature service is unknown or lacks a policy feature."""
    if not policy.feature_service:
        return
    served = feature_service_columns(feature_repo)
    if policy.feature_service not in served:
        raise ConfigError(f"feature service {policy.feature_service!r} is not defined in the feature repo (known: {', '.join(sorted(served))})",
                          fix="correct feature_service in the policy or add it to feature_repo/definitions.py")
    missing = [f for f in policy.all_features if f not in served[policy.feature_service]]
    if missing:
        raise ConfigError(f"policy features {missing} are not served by feature service {policy.feature_service!r} "
                          f"(it serves {sorted(served[policy.feature_service])})", fix="remove them from the policy or add them to the feature view")


def feature_service_columns(feature_repo: Path | None = None) -> dict[str, set[str]]:
    """Feature names per feature service, read from the repo's definitions without a registry.

    >>> sorted(feature_service_columns()["churn_v1"])[:3]
    ['contract', 'monthly_charges', 'num_products']
    """
    from components.settings import FEATURE_REPO_DIR

    path = (feature_repo or FEATURE_REPO_DIR) / "definitions.py"
    if not path.exists():
        raise ConfigError(f"feature repo definitions {path} not found", fix="set DRIFTLOOP_FEATURE_REPO to the Feast repo directory")
    spec = importlib.util.spec_from_file_location("_driftloop_feature_definitions", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    from feast import FeatureService

    out: dict[str, set[str]] = {}
    for value in vars(module).values():
        if isinstance(value, FeatureService):
            out[value.name] = {f.name for p in value.feature_view_projections for f in p.features}
    return out

"""Helpers every component body uses inside a task: settings, the policy parameter, artifact I/O.

Kept free of ``kfp`` so they are plain, testable functions; the component wrappers in
this package stay a few lines each (parse inputs, call the library, write outputs).

>>> policy = resolve_policy("churn")
>>> policy.model, policy.schedule
('churn', '0 6 1 * *')
>>> resolve_policy(policy_text("churn")).model
'churn'
>>> settings_for("/tmp/dl-doc").workdir.as_posix()
'/tmp/dl-doc'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from components.errors import ConfigError
from components.settings import Settings
from components.tables import read_frame, read_text, write_frame, write_text  # noqa: F401 (the component bodies' artifact I/O)

if TYPE_CHECKING:
    import pandas as pd

    from components.policy import Policy


def settings_for(workdir: str = "") -> Settings:
    """Settings from the task's environment, rooted at ``workdir`` when one is given.

    The work directory is a pipeline parameter so a local run can point every task at the
    same state; on a cluster it stays empty and the pod's ``DRIFTLOOP_*`` env decides.
    An explicit ``MLFLOW_TRACKING_URI`` / ``DRIFTLOOP_MLFLOW_TRACKING_URI`` still wins.
    """
    env = dict(os.environ)
    if workdir:
        env["DRIFTLOOP_WORKDIR"] = workdir
    return Settings.from_env(env)


def resolve_policy(policy: str) -> Policy:
    """A policy from a bundled name (``churn``), a path to a YAML file, or the YAML text itself."""
    import yaml

    from components.policy import load_policy, policy_from_dict

    text = policy.strip()
    if not text:
        raise ConfigError("the pipeline parameter 'policy' is empty", fix="pass a policy name such as 'churn' or the policy YAML text")
    if "\n" in text or text.startswith("{"):
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"pipeline parameter 'policy' is not valid YAML: {exc}", fix="check indentation and quoting") from None
        if not isinstance(raw, dict):
            raise ConfigError("pipeline parameter 'policy' must be a YAML mapping", fix="start it with 'model: <name>'")
        return policy_from_dict(raw, source="policy parameter")
    return load_policy(text)


def policy_text(name_or_path: str) -> str:
    """The YAML text of a bundled policy or policy file, validated, to pass as a parameter.

    >>> policy_text("fraud").splitlines()[0].startswith("#")
    True
    """
    from components.policy import load_policy
    from components.settings import POLICY_DIR

    load_policy(name_or_path)  # validate first: bad policies fail before any submit
    path = Path(name_or_path)
    if not path.exists():
        path = POLICY_DIR / f"{name_or_path}.yaml"
    return path.read_text()


def parse_time(text: str, field: str) -> pd.Timestamp | None:
    """An ISO timestamp parameter as UTC; empty means "not set" (the latest data).

    >>> parse_time("2025-07-01", "start").isoformat()
    '2025-07-01T00:00:00+00:00'
    >>> parse_time("", "end") is None
    True
    """
    import pandas as pd

    if not text:
        return None
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(f"pipeline parameter {field!r} = {text!r} is not a timestamp", fix="use ISO format, e.g. 2025-07-01T00:00:00Z") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")

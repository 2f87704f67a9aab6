"""What every component body needs inside a task: settings for the run, the policy parameter, artifact I/O.

Kept free of ``kfp``; the logic lives in the library (the names below are re-exported
from it), so the step modules stay a few lines each (parse inputs, call the library,
write outputs).

>>> resolve_policy(policy_text("churn")).model
'churn'
>>> settings_for("/tmp/dl-doc").workdir.as_posix()
'/tmp/dl-doc'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from components.policy import policy_text, resolve_policy  # noqa: F401 (the policy parameter)
from components.settings import Settings

if TYPE_CHECKING:
    from components.policy import Policy
from components.tables import read_frame, read_text, write_frame, write_text  # noqa: F401 (the component bodies' artifact I/O)
from components.windows import parse_time  # noqa: F401 (time parameters)

REFERENCE_PERIODS = 10  # the default reference window: ten policy periods before the current one (the default training window's length)


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


def with_default_reference(policy: Policy, windows: dict[str, str]) -> dict[str, str]:
    """``windows`` with an empty ``reference_start`` set to :data:`REFERENCE_PERIODS` policy periods before ``reference_end``.

    An open start cannot reach the feature store (it becomes NaT there and the reference
    comes back empty), so a step never passes one on.

    >>> w = with_default_reference(resolve_policy("fraud"), {"reference_start": "", "reference_end": "2025-03-02T10:00:00+00:00"})
    >>> w["reference_start"]
    '2025-03-02T00:00:00+00:00'
    >>> with_default_reference(resolve_policy("churn"), {"reference_start": "2024-01-01", "reference_end": "2025-01-01"})["reference_start"]
    '2024-01-01'
    """
    import pandas as pd

    if windows.get("reference_start"):
        return windows
    from components.windows import _PERIOD_OFFSET

    end = parse_time(windows["reference_end"], "reference_end")
    start = end - pd.DateOffset(**{k: v * REFERENCE_PERIODS for k, v in _PERIOD_OFFSET[policy.period].items()})
    return {**windows, "reference_start": start.isoformat()}

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

from components.policy import policy_text, resolve_policy  # noqa: F401 (the policy parameter)
from components.settings import Settings
from components.tables import read_frame, read_text, write_frame, write_text  # noqa: F401 (the component bodies' artifact I/O)
from components.windows import parse_time  # noqa: F401 (time parameters)


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

"""Checks run before compile / submit, so a bad policy fails on the laptop, not in a pod.

>>> check_policy("churn").startswith("# churn")
True
>>> check_policy("nope")
Traceback (most recent call last):
...
driftloop.errors.ConfigError: policy file 'nope' not found (fix: give a path to a YAML file or one of: ...)
"""

from __future__ import annotations


def check_policy(policy: str) -> str:
    """Validate ``policy`` (name, path or YAML text) and return the YAML text to send as a parameter.

    The schema check rejects unknown features in monitors, unknown monitors in actions
    and unknown keys (see :mod:`components.policy`).
    """
    from components.kfp.runtime import policy_text, resolve_policy

    if "\n" in policy:
        resolve_policy(policy)
        return policy
    return policy_text(policy)

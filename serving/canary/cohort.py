"""A cohort's canary: what :func:`serving.canary.rollout.roll_out` is given so that it tests one cohort only.

The rollout entry point and the controller stay as they are; a cohort canary hands them

- a backend that splits only the cohort's traffic (:class:`serving.canary.local.LocalBackend`
  with ``canary_cohort``; its metrics targets are the cohort's two servers),
- the registry seen from the cohort (:meth:`components.registry.ModelRegistry.for_cohort`:
  its champion is the cohort's incumbent, a promotion moves ``champion-<cohort>``), and
- labels filtered to the cohort (:func:`cohort_labels`), so the labelled checks (CTR,
  accuracy) join only the cohort's requests.

:func:`requests_by_cohort` counts what each arm served, per cohort, from the prediction
log: the evidence that other cohorts never reached the challenger.

>>> import pandas as pd
>>> labels = lambda: pd.DataFrame({"request_id": ["a", "b"], "clicked": [1, 0], "user_cohort": ["casual", "power"]})
>>> cohort_labels(labels, "user_cohort", "casual")()["request_id"].tolist()
['a']
>>> log = pd.DataFrame({"model_version": ["1", "1", "2"], "user_cohort": ["casual", "power", "casual"]})
>>> requests_by_cohort(log, "user_cohort")
{'1': {'casual': 1, 'power': 1}, '2': {'casual': 1}}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from components.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd


def cohort_labels(labels: Callable[[], pd.DataFrame], column: str, cohort: str) -> Callable[[], pd.DataFrame]:
    """``labels`` (a callable returning ``request_id``, the label and ``column``) restricted to ``cohort``'s requests."""

    def only_cohort() -> pd.DataFrame:
        frame = labels()
        if column not in frame.columns:
            raise ConfigError(f"the labels carry no {column!r} column, so a {cohort!r} canary cannot tell the cohort's requests apart",
                              fix=f"keep {column!r} with the labels (ReplayTraffic label_columns=[{column!r}])")
        return frame[frame[column].astype(str) == str(cohort)]

    return only_cohort


def requests_by_cohort(log: pd.DataFrame, column: str) -> dict[str, dict[str, int]]:
    """``{model_version: {cohort: requests}}`` of prediction-log rows (rows without a cohort count as ``"unknown"``)."""
    if log.empty:
        return {}
    if column not in log.columns:
        raise ConfigError(f"the prediction log has no {column!r} column", fix=f"send {column!r} with each request (it is logged, not modelled)")
    cohorts = log[column].astype(object).where(log[column].notna(), "unknown").astype(str)
    counts = log.assign(_cohort=cohorts).groupby(["model_version", "_cohort"]).size()
    out: dict[str, dict[str, int]] = {}
    for (version, cohort), n in counts.items():
        out.setdefault(str(version), {})[str(cohort)] = int(n)
    return out

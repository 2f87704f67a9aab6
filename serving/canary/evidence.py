"""What a canary step can be decided on while labels are late: label coverage and CBPE estimates per arm.

The controller (:mod:`serving.canary.controller`) calls these when the policy sets
``rollout.label_delay``. :func:`label_coverage` counts how many of a step's predictions
already have labels; :func:`arm_estimates` estimates each arm's accuracy from its logged
predicted probabilities alone with the one CBPE implementation
(:mod:`components.monitor.estimated`), calibrated on the arm's own reference sample (the
holdout logged with its registry version).

>>> import numpy as np, pandas as pd
>>> from components.monitor.estimated import fit_estimator
>>> rng = np.random.default_rng(0)
>>> p = rng.beta(2, 5, 3000); y = (rng.random(3000) < p).astype(int)
>>> est = fit_estimator(y, p)
>>> log = pd.DataFrame({"model_version": ["1"] * 500, "prediction": rng.beta(2, 5, 500)})
>>> e = arm_estimates(log, {"1": est})["1"]["accuracy"]
>>> round(e.value, 2), e.n
(0.73, 500)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from components.errors import DriftloopError
from serving.canary.analysis import ESTIMATED_METRICS, Estimate, LabelCoverage

if TYPE_CHECKING:
    import pandas as pd

    from components.monitor.estimated import Estimator
    from components.policy import Policy


def fit_arm_estimator(registry: Any, policy: Policy, version: str, say: Callable[[str], None] = lambda line: None) -> Estimator | None:
    """The CBPE estimator of one model version, calibrated on its registered reference sample; None when it has none.

    >>> class NoSample:
    ...     def reference_sample(self, model, ref):
    ...         from components.errors import DataError
    ...         raise DataError("no sample", fix="register one")
    >>> from components.policy import load_policy
    >>> fit_arm_estimator(NoSample(), load_policy("fraud"), "3") is None
    True
    """
    from components.monitor.estimated import fit_estimator

    sample_of = getattr(registry, "reference_sample", None)
    if sample_of is None:
        return None
    try:
        ref = sample_of(policy.model, str(version))
        if policy.label not in ref.columns or policy.prediction not in ref.columns:
            say(f"no label-free estimate for version {version}: its reference sample lacks {policy.label!r} or {policy.prediction!r}")
            return None
        return fit_estimator(ref[policy.label], ref[policy.prediction])
    except DriftloopError as exc:  # no sample, one label class, too few rows: the step falls back to errors and latency
        say(f"no label-free estimate for version {version}: {exc.problem}")
        return None


def arm_estimates(log: pd.DataFrame, estimators: Mapping[str, Estimator | None], min_rows: int = 1) -> dict[str, dict[str, Estimate]]:
    """Per model version in ``log`` (``model_version``, ``prediction``) with an estimator: each estimable metric's CBPE estimate and band."""
    import numpy as np

    from components.monitor.estimated import expected_metrics

    out: dict[str, dict[str, Estimate]] = {}
    if log.empty:
        return out
    for version, group in log.groupby(log["model_version"].astype(str)):
        est = estimators.get(str(version))
        scores = group["prediction"].to_numpy(dtype=float)
        scores = scores[~np.isnan(scores)]
        if est is None or len(scores) < min_rows:
            continue
        values = expected_metrics(est.calibration(scores), scores)
        out[str(version)] = {m: Estimate(values[m], est.band(m, len(scores)), len(scores), est.calibration.trusted)
                             for m in ESTIMATED_METRICS if not np.isnan(values[m])}
    return out


def label_coverage(cohort: pd.DataFrame, labels: pd.DataFrame, label: str, challenger: str, fraction: float, min_labelled: int) -> LabelCoverage:
    """How many of ``cohort`` (logged predictions: ``request_id``, ``model_version``) have a known label in ``labels``.

    >>> import pandas as pd
    >>> cohort = pd.DataFrame({"request_id": ["a", "b", "c", "d"], "model_version": ["1", "2", "2", "1"]})
    >>> c = label_coverage(cohort, pd.DataFrame({"request_id": ["a", "b", "x"], "y": [1, 0, 1]}), "y", "2", 0.5, 1)
    >>> c.labelled, c.challenger_labelled, c.enough
    (2, 1, True)
    """
    known = set(labels.loc[labels[label].notna(), "request_id"].astype(str)) if label in labels.columns else set()
    hit = cohort["request_id"].astype(str).isin(known)
    chal = cohort["model_version"].astype(str) == str(challenger)
    return LabelCoverage(len(cohort), int(hit.sum()), int((hit & chal).sum()), fraction, min_labelled)


def format_wait(seconds: float) -> str:
    """A wait in hours and minutes of the controller's clock.

    >>> format_wait(19800), format_wait(90)
    ('5h 30m', '0h 01m')
    """
    minutes = max(int(seconds // 60), 0)
    return f"{minutes // 60}h {minutes % 60:02d}m"

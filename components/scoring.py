"""Monitor a window with the registered model: fill in its predictions, reference sample and baseline.

Data a monitor run reads may lack what the monitors need: a ``prediction`` column (raw
features only), or a reference window. The registered model version (``champion`` unless
one is named) fills both in: it scores the rows, its logged reference sample stands in for
the reference window, and its baseline metrics feed the performance monitors. The
``driftloop monitor`` command and the monitor pipeline's step both call
:func:`monitor_report`, so the laptop and the cluster score and monitor one way.

>>> import pandas as pd
>>> from components.policy import resolve_policy
>>> policy = resolve_policy("churn")
>>> needs_registry(policy, pd.DataFrame({"prediction": [0.1]}), pd.DataFrame({"prediction": [0.2]}))
False
>>> needs_registry(policy, None, pd.DataFrame({"prediction": [0.2]}))
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.errors import ConfigError, DataError
from components.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from components.policy import Policy


@dataclass(frozen=True)
class ScoredWindows:
    """The reference and current rows with predictions, and where they came from.

    ``model_version`` is the resolved version number when the registry filled anything in
    (else whatever the caller passed); ``baseline`` the metrics the performance monitors
    compare with; ``from_registry`` whether the registry was used.
    """

    reference: pd.DataFrame
    current: pd.DataFrame
    model_version: str | None
    baseline: dict[str, Any] | None
    from_registry: bool = False


def needs_registry(policy: Policy, reference: pd.DataFrame | None, current: pd.DataFrame) -> bool:
    """Whether the registered model must fill in a reference window or predictions."""
    return reference is None or policy.prediction not in reference.columns or policy.prediction not in current.columns


def score_windows(policy: Policy, reference: pd.DataFrame | None, current: pd.DataFrame, model_version: str | None = None,
                  settings: Settings | None = None, baseline: dict[str, Any] | None = None) -> ScoredWindows:
    """Complete the two windows from the registry when they lack predictions or a reference.

    ``model_version`` is a version number or alias (default ``champion``); a missing
    reference becomes that version's reference sample; rows without predictions are scored
    by it; ``baseline`` defaults to its registered baseline metrics. Windows that already
    carry predictions pass through untouched (no registry is opened).
    """
    if not needs_registry(policy, reference, current):
        assert reference is not None
        return ScoredWindows(reference, current, model_version or None, baseline)
    from components.registry import CHAMPION, ModelRegistry

    settings = settings or Settings.from_env()
    uri = settings.mlflow_tracking_uri
    what = f"the data has no {policy.prediction!r} column" + (" (or no reference window)" if reference is None else "")
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():  # do not create an empty store
        raise DataError(f"{what} and there is no model registry at {uri}",
                        fix="pass a reference and data with predictions, or set DRIFTLOOP_WORKDIR / MLFLOW_TRACKING_URI to where 'driftloop train' registered the model")
    registry = ModelRegistry(settings)
    try:
        version = str(registry.resolve(policy.model, model_version or CHAMPION).version)  # the one version resolver
    except ConfigError as exc:
        raise DataError(f"{what}, and {exc.problem}", fix=f"pass a reference and data with predictions, or train and promote a model first ('driftloop train --policy {policy.model}')") from None
    if reference is None:
        reference = registry.reference_sample(policy.model, version)
    if policy.prediction not in reference.columns or policy.prediction not in current.columns:
        model = registry.load(policy.model, version)
        reference, current = (f if policy.prediction in f.columns else f.assign(**{policy.prediction: model.predict(f[policy.all_features])})
                              for f in (reference, current))
    return ScoredWindows(reference, current, version, baseline if baseline is not None else registry.baseline_metrics(policy.model, version), True)


def monitor_report(policy: Policy, reference: pd.DataFrame | None, current: pd.DataFrame, model_version: str | None = None,
                   settings: Settings | None = None, baseline: dict[str, Any] | None = None,
                   progress: Callable[[str], None] | None = None) -> Any:
    """Run the policy's monitors (components.monitor.engine) on the windows completed by :func:`score_windows`.

    Returns the :class:`~components.monitor.results.MonitorReport` (with its decision).
    """
    from components.monitor.engine import run_monitors

    scored = score_windows(policy, reference, current, model_version, settings, baseline)
    return run_monitors(policy, scored.reference, scored.current, baseline=scored.baseline, model_version=scored.model_version, progress=progress)


def monitor_metrics(report: Any) -> dict[str, float]:
    """One dashboard metric per monitor (1 fired / 0 quiet) plus the current window's rows.

    >>> from components.monitor.results import MonitorReport
    >>> monitor_metrics(MonitorReport("churn", "1", {"rows": 5}, [{"name": "acc", "fired": True}], {}, "now"))
    {'rows': 5.0, 'fired.acc': 1.0}
    """
    figures = {"rows": float(report.window.get("rows") or 0)}
    for m in report.monitors:
        figures[f"fired.{m['name']}"] = 1.0 if m.get("fired") else 0.0
    return figures

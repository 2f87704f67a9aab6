"""Monitor a window with the registered model: fill in its predictions, reference sample and baseline.

Data a monitor run reads may lack what the monitors need: a ``prediction`` column (raw
features only), or a reference window. The registered model version (``champion`` unless
one is named) fills both in: it scores the rows, its logged reference sample stands in for
the reference window, and its baseline metrics feed the performance monitors. The
reference profile registered with the version (sorted columns and counts of its reference
sample, :mod:`components.monitor.profile`) serves the drift monitors whenever a version is
named or the reference comes from the registry, so they neither read nor sort reference
rows; a version registered without one falls back to the rows, with a note in the report.
The ``driftloop monitor`` command and the monitor pipeline's step both call
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

    from components.monitor.profile import ReferenceProfile
    from components.policy import Policy


@dataclass(frozen=True)
class ScoredWindows:
    """The reference and current rows with predictions, and where they came from.

    ``model_version`` is the resolved version number when the registry filled anything in
    (else whatever the caller passed); ``baseline`` the metrics the performance monitors
    compare with; ``from_registry`` whether the registry was used. ``reference`` is None
    only when it was not needed (a registered profile serves every monitor).
    """

    reference: pd.DataFrame | None
    current: pd.DataFrame
    model_version: str | None
    baseline: dict[str, Any] | None
    from_registry: bool = False


def needs_registry(policy: Policy, reference: pd.DataFrame | None, current: pd.DataFrame) -> bool:
    """Whether the registered model must fill in a reference window or predictions."""
    if reference is None:
        return True
    from components.monitor.validate import required_columns

    # only monitors that read the model's scores need them (feature drift alone does not)
    return policy.prediction in required_columns(policy) and (policy.prediction not in reference.columns or policy.prediction not in current.columns)


def score_windows(policy: Policy, reference: pd.DataFrame | None, current: pd.DataFrame, model_version: str | None = None,
                  settings: Settings | None = None, baseline: dict[str, Any] | None = None, need_reference: bool = True) -> ScoredWindows:
    """Complete the two windows from the registry when they lack predictions or a reference.

    ``model_version`` is a version number or alias (default ``champion``); a missing
    reference becomes that version's reference sample; rows without predictions are scored
    by it; ``baseline`` defaults to its registered baseline metrics. Windows that already
    carry predictions pass through untouched (no registry is opened). ``need_reference=False``
    leaves a missing reference missing (a registered profile stands in for it).
    """
    if not needs_registry(policy, reference if need_reference else current, current):
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
    if reference is None and need_reference:
        reference = registry.reference_sample(policy.model, version)
    frames = [f for f in (reference, current) if f is not None]
    if needs_registry(policy, reference if reference is not None else current, current):
        model = registry.load(policy.model, version)
        scored = [f if policy.prediction in f.columns else f.assign(**{policy.prediction: model.predict(f[policy.all_features])}) for f in frames]
        reference, current = (scored[0], scored[1]) if reference is not None else (None, scored[0])
    return ScoredWindows(reference, current, version, baseline if baseline is not None else registry.baseline_metrics(policy.model, version), True)


def registered_profile(policy: Policy, model_version: str | None, settings: Settings) -> tuple[ReferenceProfile | None, str | None]:
    """The reference profile registered with ``model_version`` (default champion), or None and why not.

    ``(None, None)`` when there is no registry or no such version (scoring then says what is
    missing, if anything is); ``(None, note)`` when the version was registered without a profile.
    """
    from components.registry import CHAMPION, ModelRegistry

    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None, None
    registry = ModelRegistry(settings)
    try:
        version = str(registry.resolve(policy.model, model_version or CHAMPION).version)
    except ConfigError:
        return None, None
    profile = registry.reference_profile(policy.model, version)
    if profile is None:
        return None, (f"model {policy.model!r} version {version} has no registered reference profile (registered before profiles): "
                      "the drift monitors profiled the reference rows instead; register the model again to store one")
    return profile, None


def specialist_references(policy: Policy, settings: Settings) -> dict[str, pd.DataFrame]:
    """``{cohort: reference sample}`` of each cohort's specialist (``champion-<cohort>``); ``{}`` without a registry.

    Only for a policy with a per-cohort (sequential) monitor: a cohort its specialist serves is
    monitored against the specialist's own reference, not the global champion's.

    >>> from components.policy import resolve_policy
    >>> specialist_references(resolve_policy("churn"), Settings(workdir=Path("/nonexistent")))
    {}
    """
    from components.registry import ModelRegistry

    uri = settings.mlflow_tracking_uri
    if not any(m.type == "sequential" for m in policy.monitors) or (uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()):
        return {}
    registry = ModelRegistry(settings)
    return {cohort: registry.reference_sample(policy.model, str(version)) for cohort, version in registry.cohort_routes(policy.model).items()}


def monitor_report(policy: Policy, reference: pd.DataFrame | None, current: pd.DataFrame, model_version: str | None = None,
                   settings: Settings | None = None, baseline: dict[str, Any] | None = None,
                   progress: Callable[[str], None] | None = None, profile: ReferenceProfile | None = None,
                   cohort_references: dict[str, pd.DataFrame] | None = None) -> Any:
    """Run the policy's monitors (components.monitor.engine) on the windows completed by :func:`score_windows`.

    The drift monitors run on ``profile`` when given, else on the registered version's
    profile when a version is named or the reference comes from the registry
    (:func:`registered_profile`); reference rows are fetched only for the monitors a profile
    cannot serve. The per-cohort monitors compare a cohort served by a specialist with
    ``cohort_references`` (default: :func:`specialist_references`). Returns the
    :class:`~components.monitor.results.MonitorReport` (with its decision).
    """
    from components.monitor.context import profile_covers
    from components.monitor.engine import run_monitors

    settings = settings or Settings.from_env()
    note = None
    if profile is None and (model_version or reference is None):
        profile, note = registered_profile(policy, model_version, settings)
    need_reference = profile is None or not profile_covers(policy, profile)
    scored = score_windows(policy, reference, current, model_version, settings, baseline, need_reference=need_reference)
    if cohort_references is None:
        cohort_references = specialist_references(policy, settings)
    report = run_monitors(policy, scored.reference, scored.current, baseline=scored.baseline, model_version=scored.model_version,
                          progress=progress, profile=profile, cohort_references=cohort_references)
    if note:
        report.warnings.append(note)
    return report


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

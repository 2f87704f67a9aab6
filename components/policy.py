"""The per-model policy: one YAML file that says what to watch, when to retrain and how to roll out.

The policy is validated on load. Unknown keys are rejected and every error names the YAML
path and the fix, so a typo fails when the file is read, not in the middle of a run.

>>> policy = Policy.model_validate({
...     "model": "churn", "label": "churned", "timestamp": "event_timestamp",
...     "entity": "customer_id", "features": ["tenure_months"],
...     "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.85}],
...     "actions": [{"when": ["acc"], "strategy": "full"}]})
>>> policy.monitor("acc").type
'performance'
>>> policy.rollout.steps
[10, 25, 50, 100]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

# Each vocabulary is declared once, where it is implemented; the policy validates against it.
from components.errors import ConfigError
from components.metrics import LOWER_IS_BETTER, METRICS  # noqa: F401 - LOWER_IS_BETTER re-exported
from components.monitor.concept import DEFAULT_DETECTOR, DETECTORS
from components.monitor.estimated import ESTIMABLE
from components.monitor.runners import MONITOR_TYPES
from components.monitor.stattests import get_stattest

UPSTREAM_DRIFT = "upstream_feature_drift"  # the pseudo-monitor an action may name (see Policy validation)
ROLLOUT_METRICS = ("error_rate", "latency_p95", "latency_p99", "prediction_shift", "accuracy", "ctr")


def _stattest(kind: str) -> Callable[[str], str]:
    """A validator: ``name`` must be a registered p-value test for ``kind`` columns."""

    def check(name: str) -> str:
        try:
            get_stattest(name, kind, result="p_value")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return name

    return check


def _one_of(names: tuple[str, ...], what: str) -> Callable[[str], str]:
    """A validator: ``value`` must be one of ``names`` (the error lists them)."""

    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"unknown {what} {value!r}; use one of {', '.join(names)}")
        return value

    return check


NumericTest = Annotated[str, AfterValidator(_stattest("num"))]
CategoricalTest = Annotated[str, AfterValidator(_stattest("cat"))]
Detector = Annotated[str, AfterValidator(_one_of(DETECTORS, "concept-drift detector"))]
PerformanceMetric = Annotated[str, AfterValidator(_one_of(METRICS, "metric"))]
EstimableMetric = Annotated[str, AfterValidator(_one_of(ESTIMABLE, "metric that can be estimated without labels"))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Segments(_Strict):
    """A column that splits the population into named segments (e.g. prime / subprime)."""

    column: str
    values: list[str] = Field(min_length=1)


class PSISettings(_Strict):
    bins: int = Field(10, ge=2, le=100)
    warn: float = Field(0.1, gt=0)
    drift: float = Field(0.25, gt=0)


class _MonitorBase(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    segment: str | None = None  # restrict the monitor to one segment value
    per_segment: bool = False  # also run the monitor in every segment
    min_samples: int = Field(100, ge=1)
    # false alarms per run on data without change; default: an equal share of the policy's
    # rate (components.monitor.budget). Online detectors derive their thresholds from it.
    false_alarm_rate: float | None = Field(None, gt=0, lt=1)


class FeatureDriftMonitor(_MonitorBase):
    """Per-feature two-sample tests (alibi-detect) with multiple-testing correction, plus PSI."""

    type: Literal["feature_drift"]
    features: list[str] | None = None  # default: all policy features
    numeric_test: NumericTest = "ks"
    categorical_test: CategoricalTest = "chi2"
    tabular: bool = False  # one alibi-detect TabularDrift over the mixed set
    correction: Literal["bonferroni", "fdr"] = "bonferroni"
    p_value: float | None = Field(None, gt=0, lt=1)  # default: the monitor's false_alarm_rate
    psi: PSISettings | None = Field(default_factory=PSISettings)
    multivariate: Literal["mmd", "classifier"] | None = None
    fire_on: Literal["test", "psi", "either"] = "test"


class PredictionDriftMonitor(_MonitorBase):
    type: Literal["prediction_drift"]
    test: NumericTest = "ks"
    p_value: float | None = Field(None, gt=0, lt=1)  # default: the monitor's false_alarm_rate
    psi: PSISettings | None = Field(default_factory=PSISettings)


class LabelDriftMonitor(_MonitorBase):
    type: Literal["label_drift"]
    test: CategoricalTest = "chi2"
    p_value: float | None = Field(None, gt=0, lt=1)  # default: the monitor's false_alarm_rate


class PerformanceMonitor(_MonitorBase):
    """A metric against an absolute floor/ceiling and/or a relative drop from the baseline."""

    type: Literal["performance"]
    metric: PerformanceMetric
    min: float | None = None  # fire when the metric falls below
    max: float | None = None  # fire when the metric rises above (log loss, calibration error)
    max_relative_drop: float | None = Field(None, gt=0, lt=1)  # fire when (baseline - value)/|baseline| exceeds
    confidence: float = Field(0.95, gt=0, lt=1)
    slice_by: list[str] = Field(default_factory=list)  # columns to rank by share of the drop when it fires

    @model_validator(mode="after")
    def _needs_a_threshold(self) -> PerformanceMonitor:
        if self.min is None and self.max is None and self.max_relative_drop is None:
            raise ValueError("set at least one of min, max or max_relative_drop")
        return self


class EstimatedPerformanceMonitor(_MonitorBase):
    """A metric estimated from predictions alone (CBPE), against the same limits as ``performance``.

    Fires before the labels arrive; blind to pure concept drift, so keep a labelled
    ``performance`` or ``concept_drift`` monitor beside it.
    """

    type: Literal["estimated_performance"]
    metric: EstimableMetric
    min: float | None = None  # fire when the estimate's band lies wholly below
    max_relative_drop: float | None = Field(None, gt=0, lt=1)  # ... or below baseline * (1 - drop)
    seed: int = 0  # for the calibration split and the sampling-error bootstrap

    @model_validator(mode="after")
    def _needs_a_threshold(self) -> EstimatedPerformanceMonitor:
        if self.min is None and self.max_relative_drop is None:
            raise ValueError("set min or max_relative_drop")
        return self


class ConceptDriftMonitor(_MonitorBase):
    """An online detector over the time-ordered stream of prediction errors."""

    type: Literal["concept_drift"]
    detector: Detector = DEFAULT_DETECTOR
    # thresholds: unset, each is derived from false_alarm_rate and the window's length
    ert: int | None = Field(None, ge=10)  # fet_online/cvm_online: expected run time (rows) between false alarms
    window_size: int = Field(100, ge=5)
    delta: float | None = Field(None, gt=0, lt=1)  # ADWIN confidence
    ph_threshold: float | None = Field(None, gt=0)  # Page-Hinkley lambda
    slice_by: list[str] = Field(default_factory=list)


class SequentialMonitor(_MonitorBase):
    """Wald's SPRT per cohort for a drop in a binary rate (click-through, conversion)."""

    type: Literal["sequential"]
    cohort_column: str
    outcome: str | None = None  # binary column; default: the policy label
    relative_drop: float = Field(0.2, gt=0, lt=1)  # H1: rate = baseline * (1 - relative_drop)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    beta: float = Field(0.2, gt=0, lt=0.5)


Monitor = Annotated[
    FeatureDriftMonitor | PredictionDriftMonitor | LabelDriftMonitor | PerformanceMonitor | EstimatedPerformanceMonitor
    | ConceptDriftMonitor | SequentialMonitor,
    Field(discriminator="type"),
]


class Action(_Strict):
    """When any monitor in ``when`` fires, retrain with ``strategy`` (or only alert)."""

    when: list[str] = Field(min_length=1)
    action: Literal["retrain", "alert"] = "retrain"
    strategy: Literal["full", "recent_window", "cohort", "emergency"] = "full"
    window: str | None = None  # e.g. "90d", "6M", "48h": the training window ending now
    cohort: str | None = None  # fixed cohort; default: the cohort the monitor names
    upweight: float | None = Field(None, gt=1)  # cohort strategy: up-weight instead of filter
    min_rows: int = Field(200, ge=1)  # emergency guard: refuse to train on fewer rows
    priority: int = 0  # higher wins when several actions match

    @field_validator("window")
    @classmethod
    def _window_format(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value


class Trainer(_Strict):
    kind: Literal["sklearn_hgb", "sklearn_logreg", "keras_mlp"] = "sklearn_hgb"
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    holdout: float = Field(0.2, gt=0, lt=0.9)  # the latest share of the window, by time


class Gate(_Strict):
    """The challenger must beat the champion on ``metric`` and not regress in any segment."""

    metric: Literal["accuracy", "auc", "gini", "log_loss"] = "auc"
    min_improvement: float = 0.0
    max_segment_regression: float = Field(0.02, ge=0)


class RolloutCheck(_Strict):
    metric: Literal["error_rate", "latency_p95", "latency_p99", "prediction_shift", "accuracy", "ctr"]
    max: float | None = None  # absolute ceiling on the challenger
    max_ratio: float | None = Field(None, gt=0)  # challenger / champion
    max_drop: float | None = Field(None, ge=0)  # champion - challenger (accuracy, ctr)


DEFAULT_LABELLED_FRACTION = 0.8


class Rollout(_Strict):
    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100])
    interval_seconds: float = Field(30, gt=0)
    min_requests: int = Field(50, ge=1)  # per arm per step; fewer is "no data" and halts
    max_failed_checks: int = Field(1, ge=0)
    alpha: float = Field(0.05, gt=0, lt=0.5)  # always-valid sequential test on labelled accuracy
    # prediction_shift is not a default: a challenger retrained after drift is meant to
    # predict differently from the champion. Add it for retrains that should not.
    checks: list[RolloutCheck] = Field(
        default_factory=lambda: [
            RolloutCheck(metric="error_rate", max=0.01),
            RolloutCheck(metric="latency_p95", max_ratio=1.5),
            RolloutCheck(metric="accuracy", max_drop=0.02),
        ]
    )
    # Label delay (optional; absent = every interval is analysed on the labels known so far).
    # label_delay: how long after a prediction its label arrives ("6h"). A step's cohort is
    # its predictions up to the analysis at which the challenger served min_labelled / labelled_fraction
    # of them; the step is analysed on labels once labelled_fraction
    # of them (and min_labelled of the challenger's, default min_requests) have labels, at the
    # latest max_label_wait (default label_delay) after that interval. Until then the labelled
    # checks use each arm's CBPE estimate and the step may only hold or roll back.
    label_delay: str | None = None
    max_label_wait: str | None = None
    labelled_fraction: float | None = Field(None, gt=0, le=1)  # None: 0.8 (DEFAULT_LABELLED_FRACTION)
    min_labelled: int | None = Field(None, ge=1)

    @field_validator("label_delay", "max_label_wait")
    @classmethod
    def _delay_is_a_window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value

    @model_validator(mode="after")
    def _label_wait_needs_a_delay_and_a_labelled_check(self) -> Rollout:
        if self.label_delay is None:
            stray = [k for k in ("max_label_wait", "labelled_fraction", "min_labelled") if getattr(self, k) is not None]
            if stray:
                raise ValueError(f"{', '.join(stray)} only apply with label_delay; set label_delay (e.g. '6h') or remove them")
        elif not any(c.metric in ("accuracy", "ctr") for c in self.checks):
            raise ValueError("label_delay is set but no check needs labels; add an accuracy or ctr check or remove label_delay")
        return self

    @property
    def label_wait_seconds(self) -> float | None:
        """The longest a step waits for its labels, in seconds (None: the policy sets no label delay).

        >>> Rollout(label_delay="6h").label_wait_seconds, Rollout(label_delay="1M", max_label_wait="1d").label_wait_seconds
        (21600.0, 86400.0)
        """
        text = self.max_label_wait or self.label_delay
        if text is None:
            return None
        count, unit = parse_window(text)
        return float(count * _UNIT_SECONDS[unit])

    @field_validator("steps")
    @classmethod
    def _steps_increase_to_100(cls, steps: list[int]) -> list[int]:
        if not steps:
            raise ValueError("give at least one step, e.g. [10, 25, 50, 100]")
        if any(s <= 0 or s > 100 for s in steps):
            raise ValueError(f"every step must be a percentage in 1..100, got {steps}")
        if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError(f"steps must strictly increase, got {steps}")
        if steps[-1] != 100:
            raise ValueError(f"the last step must be 100 (full rollout), got {steps[-1]}")
        return steps


class Alerting(_Strict):
    webhook: str | None = None  # Slack-compatible incoming webhook URL (https)
    on: list[Literal["retrain", "alert", "none"]] = Field(default_factory=lambda: ["retrain", "alert"])
    # a webhook on a private, loopback or link-local address (or plain http) is refused unless
    # set: a policy author must not be able to make driftloop post into the cluster's network
    allow_private_webhook: bool = False

    @field_validator("webhook")
    @classmethod
    def _webhook_is_a_url(cls, url: str | None) -> str | None:
        from urllib.parse import urlsplit

        if url is None or url == "":
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{url[:60]!r} is not an http(s) URL with a host; use e.g. https://hooks.slack.com/services/...")
        return url


class Policy(_Strict):
    """One model's policy. Load it with :func:`load_policy`."""

    model: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    scenario: str | None = None
    entity: str
    timestamp: str = "event_timestamp"
    label: str
    prediction: str = "prediction"
    features: list[str] = Field(min_length=1)
    categorical_features: list[str] = Field(default_factory=list)
    segments: Segments | None = None
    false_alarm_rate: float = Field(0.05, gt=0, lt=1)  # per-run false-alarm rate of the whole policy, split over its monitors
    feature_service: str | None = None
    period: Literal["hour", "day", "month"] = "month"
    schedule: str | None = None  # cron for the recurring monitor run
    trainer: Trainer = Field(default_factory=Trainer)
    gate: Gate = Field(default_factory=Gate)
    monitors: list[Monitor] = Field(min_length=1)
    actions: list[Action] = Field(default_factory=list)
    rollout: Rollout = Field(default_factory=Rollout)
    alerting: Alerting = Field(default_factory=Alerting)

    @model_validator(mode="after")
    def _cross_references(self) -> Policy:
        names = [m.name for m in self.monitors]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"monitor names must be unique; repeated: {sorted(dup)}")
        all_features = set(self.features) | set(self.categorical_features)
        overlap = set(self.features) & set(self.categorical_features)
        if overlap:
            raise ValueError(f"{sorted(overlap)} listed in both features and categorical_features")
        for i, m in enumerate(self.monitors):
            if isinstance(m, FeatureDriftMonitor) and m.features:
                unknown = sorted(set(m.features) - all_features)
                if unknown:
                    raise ValueError(f"monitors[{i}].features names unknown features {unknown}; known: {sorted(all_features)}")
            if m.segment is not None:
                if self.segments is None:
                    raise ValueError(f"monitors[{i}].segment is set but the policy has no segments: add segments.column and segments.values")
                if m.segment not in self.segments.values:
                    raise ValueError(f"monitors[{i}].segment {m.segment!r} is not one of segments.values {self.segments.values}")
            if m.per_segment and self.segments is None:
                raise ValueError(f"monitors[{i}].per_segment needs segments.column and segments.values")
        for i, a in enumerate(self.actions):
            # upstream_feature_drift: drift found when a feature view this model reads was
            # materialized (components.upstream); naming it lets that alone trigger the action
            unknown = sorted(set(a.when) - set(names) - {UPSTREAM_DRIFT})
            if unknown:
                raise ValueError(f"actions[{i}].when names unknown monitors {unknown}; known: {[*names, UPSTREAM_DRIFT]}")
        return self

    def monitor(self, name: str) -> Any:
        """The monitor called ``name``."""
        for m in self.monitors:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def all_features(self) -> list[str]:
        return [*self.features, *self.categorical_features]

    @property
    def segment_column(self) -> str | None:
        return self.segments.column if self.segments else None


_WINDOW_UNITS = {"h": "hours", "d": "days", "w": "weeks", "M": "months"}


_UNIT_SECONDS = {"hours": 3600, "days": 86400, "weeks": 7 * 86400, "months": 30 * 86400}


def parse_window(text: str) -> tuple[int, str]:
    """Parse a window like ``90d`` into ``(90, "days")``.

    >>> parse_window("6M")
    (6, 'months')
    """
    unit = text[-1:] if text else ""
    if unit not in _WINDOW_UNITS or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ValueError(f"window {text!r} must be a positive count and a unit h, d, w or M, e.g. '90d' or '6M'")
    return int(text[:-1]), _WINDOW_UNITS[unit]


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p in MONITOR_TYPES))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling"
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown monitor type; use one of {', '.join(MONITOR_TYPES)}"
        elif err["type"] == "missing":
            msg = "required key is missing; add it"
        lines.append(f"{source}: {loc or '<top>'}: {msg}")
    return "; ".join(lines)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy YAML file. A bare name (``churn``) resolves in ``policies/``.

    Raises :class:`~components.errors.ConfigError` naming the YAML path of each error.
    """
    from components.settings import POLICY_DIR

    p = Path(path)
    if not p.exists() and not p.suffix and (POLICY_DIR / f"{p}.yaml").exists():
        p = POLICY_DIR / f"{p}.yaml"
    if not p.exists():
        known = ", ".join(sorted(f.stem for f in POLICY_DIR.glob("*.yaml")))
        raise ConfigError(f"policy file {str(path)!r} not found", fix=f"give a path to a YAML file or one of: {known}")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}", fix="check indentation and quoting") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the policy must be a YAML mapping", fix="start the file with 'model: <name>'")
    return policy_from_dict(raw, source=str(p))


def policy_from_dict(raw: dict[str, Any], source: str = "policy") -> Policy:
    """Validate a policy given as a dict (e.g. a KFP pipeline parameter)."""
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source), fix="correct the keys named above") from None


def resolve_policy(policy: str) -> Policy:
    """A policy from a bundled name (``churn``), a path to a YAML file, or the YAML text itself.

    The one reader of a policy given as text (a KFP pipeline parameter, a CLI option).

    >>> resolve_policy("churn").model
    'churn'
    >>> resolve_policy("model: m\\nentity: id\\nlabel: y\\nfeatures: [x]\\n"
    ...                "monitors: [{name: acc, type: performance, metric: accuracy, min: 0.8}]").features
    ['x']
    """
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
    >>> resolve_policy(policy_text("churn")).model
    'churn'
    """
    from components.settings import POLICY_DIR

    load_policy(name_or_path)  # validate first: bad policies fail before any submit
    path = Path(name_or_path)
    if not path.exists():
        path = POLICY_DIR / f"{name_or_path}.yaml"
    return path.read_text()

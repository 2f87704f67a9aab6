"""Per-feature-view checks declared in the Feast repo (``feature_repo/feature_checks.yaml``).

One entry per feature view: the reference window the platform team names, the drift tests
and false-alarm budget (the same registry and correction as the model monitors), the
data-quality limits of a newly materialized batch, and whether a failing quality check
blocks the batch from the online store. Validated on load like a policy: a bad entry is a
:class:`~components.errors.ConfigError` naming the view, the key and the fix.

>>> checks = view_checks_from_dict({"churn_features": {"reference": {"start": "2024-01-01", "end": "2024-07-01"}}})
>>> c = checks["churn_features"]
>>> c.drift.numeric_test, c.drift.p_value, c.quality.max_null_share, c.on_fail
('ks', 0.05, 0.05, 'block')
>>> view_checks_from_dict({"churn_features": {"reference": {"start": "2024-01-01", "end": "2024-07-01"},
...                                          "drift": {"numeric_test": "chi2"}}})
Traceback (most recent call last):
components.errors.ConfigError: feature_checks: churn_features.drift.numeric_test: drift test 'chi2' does not accept numeric columns (fix: use one of ks, cvm for numeric columns) (fix: correct the keys named above)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from components.errors import ConfigError

CHECKS_FILE = "feature_checks.yaml"


def _p_value_test(kind: str) -> Any:
    def check(name: str) -> str:
        from components.monitor.stattests import get_stattest

        try:
            get_stattest(name, kind, result="p_value")  # ReferenceSummary runs p-value tests only
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return name

    return check


def _duration(text: str) -> str:
    try:
        delta = pd.Timedelta(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration; use e.g. '6h', '2d' or '35d'") from None
    if delta <= pd.Timedelta(0):
        raise ValueError(f"{text!r} must be a positive duration, e.g. '2d'")
    return text


def _timestamp(text: Any) -> str:
    try:
        pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ValueError(f"{text!r} is not a timestamp; use ISO, e.g. '2024-01-01T00:00:00'") from None
    return str(text)


def _utc(text: Any) -> pd.Timestamp:
    """A timestamp in UTC; a naive one is taken as UTC (so naive and aware bounds compare)."""
    t = pd.Timestamp(text)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


Duration = Annotated[str, AfterValidator(_duration)]
Timestamp = Annotated[Any, AfterValidator(_timestamp)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReferenceWindow(_Strict):
    """The window ``[start, end)`` of offline rows the reference profile is taken from."""

    start: Timestamp
    end: Timestamp

    @model_validator(mode="after")
    def _ordered(self) -> ReferenceWindow:
        if _utc(self.start) >= _utc(self.end):
            raise ValueError(f"reference.start {self.start} must be before reference.end {self.end}")
        return self


class DriftSettings(_Strict):
    """Per-feature drift tests, corrected across the view's features (as the model monitors)."""

    numeric_test: Annotated[str, AfterValidator(_p_value_test("num"))] = "ks"
    categorical_test: Annotated[str, AfterValidator(_p_value_test("cat"))] = "chi2"
    p_value: float = Field(0.05, gt=0, lt=1)
    correction: Literal["bonferroni", "fdr"] = "bonferroni"
    skip: list[str] = Field(default_factory=list)  # features not drift-tested (counters that grow by design); still quality-checked


class Volume(_Strict):
    """Rows of a batch against the reference's rows per unit of time, scaled to the batch window."""

    min_ratio: float = Field(0.5, ge=0)
    max_ratio: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Volume:
        if self.min_ratio >= self.max_ratio:
            raise ValueError(f"volume.min_ratio {self.min_ratio} must be below volume.max_ratio {self.max_ratio}")
        return self


class Quality(_Strict):
    """Data-quality limits of one batch (shares are fractions of the batch's rows)."""

    max_null_share: float = Field(0.05, ge=0, le=1)
    max_out_of_range_share: float = Field(0.01, ge=0, le=1)  # outside the reference range (or `ranges`)
    range_margin: float = Field(0.1, ge=0)  # the reference [min, max] widened by this share of its span on each side
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)  # explicit [low, high] per numeric feature
    max_new_category_share: float = Field(0.01, ge=0, le=1)  # rows with categories the reference never saw
    min_vanished_category_share: float = Field(0.01, ge=0, le=1)  # a reference category this common must appear
    volume: Volume = Field(default_factory=Volume)
    max_staleness: Duration = "2d"  # batch end minus its newest event timestamp

    @model_validator(mode="after")
    def _ranges(self) -> Quality:
        for name, (low, high) in self.ranges.items():
            if low >= high:
                raise ValueError(f"ranges.{name}: low {low} must be below high {high}")
        return self


class ViewCheck(_Strict):
    """Everything checked for one feature view."""

    reference: ReferenceWindow
    drift: DriftSettings = Field(default_factory=DriftSettings)
    quality: Quality = Field(default_factory=Quality)
    on_fail: Literal["block", "warn"] = "block"  # block: a failing quality check keeps the batch out of the online store
    min_rows: int = Field(30, ge=1)  # fewer rows in a batch: drift tests report insufficient data


def _format(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<top>"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling"
        elif err["type"] == "missing":
            msg = "required key is missing; add it"
        lines.append(f"{source}: {loc}: {msg}")
    return "; ".join(lines)


def view_checks_from_dict(raw: Any, source: str = "feature_checks") -> dict[str, ViewCheck]:
    """Validate ``{view name: settings}``; ConfigError naming each bad key."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{source}: must be a mapping of feature view name to its checks", fix="start with e.g. 'churn_features:' and a reference window")
    checks = {}
    for view, entry in raw.items():
        try:
            checks[str(view)] = ViewCheck.model_validate(entry)
        except ValidationError as exc:
            raise ConfigError(_format(exc, f"{source}: {view}").replace(f"{source}: {view}: ", f"{source}: {view}."), fix="correct the keys named above") from None
    return checks


def load_view_checks(path: str | Path) -> dict[str, ViewCheck]:
    """Read and validate a feature-checks YAML file (``feature_repo/feature_checks.yaml``)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"feature checks file {p} not found", fix=f"add {CHECKS_FILE} beside feature_repo/definitions.py")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}", fix="check indentation and quoting") from None
    return view_checks_from_dict(raw, source=str(p))


def view_check(view: str, path: str | Path) -> ViewCheck:
    """The checks declared for ``view``; ConfigError naming the declared views if it has none."""
    checks = load_view_checks(path)
    if view not in checks:
        raise ConfigError(f"feature view {view!r} has no checks in {path}", fix=f"add a '{view}:' entry, or use one of: {', '.join(sorted(checks))}")
    return checks[view]


__all__ = ["CHECKS_FILE", "DriftSettings", "Quality", "ReferenceWindow", "ViewCheck", "Volume", "load_view_checks", "view_check", "view_checks_from_dict"]

"""Check one materialized batch of a feature view against its reference profile.

The reference profile is a :class:`~components.monitor.reference_summary.ReferenceSummary`
(the model monitors' format: same drift tests, same correction across features) plus the
quality facts of the reference window (range, categories, rows per day). A batch then
gets per-feature drift results and data-quality results; :attr:`ViewReport.passed` is
False when a quality check fails (drift alone is reported and fanned out to the models,
it does not block).

>>> import numpy as np
>>> from components.features.view_checks import ViewCheck
>>> rng = np.random.default_rng(0)
>>> def batch(n, start, scale=1.0):
...     t = pd.date_range(start, periods=n, freq="30min", tz="UTC")
...     return pd.DataFrame({"event_timestamp": t, "charges": rng.normal(60, 10, n) * scale, "plan": rng.choice(["a", "b"], n)})
>>> check = ViewCheck.model_validate({"reference": {"start": "2024-01-01", "end": "2024-01-21"}})
>>> profile = ViewProfile.fit(batch(960, "2024-01-01"), ["charges"], ["plan"], check, "2024-01-01", "2024-01-21")
>>> ok = check_batch(batch(48, "2024-02-01"), profile, check, "2024-02-01", "2024-02-02", view="v")
>>> ok.passed, ok.drifted_features
(True, [])
>>> bad = check_batch(batch(48, "2024-02-01", scale=100), profile, check, "2024-02-01", "2024-02-02", view="v")
>>> bad.passed, bad.drifted_features, [q.check for q in bad.failed_quality]
(False, ['charges'], ['range'])
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from components.errors import ConfigError
from components.features.view_checks import ViewCheck
from components.jsonsafe import json_safe
from components.monitor.reference_summary import ReferenceSummary
from components.monitor.results import TestResult

TIMESTAMP = "event_timestamp"
# what str() makes of a missing value: ingest casts categorical features with astype(str), so a
# null arrives in the offline store as the text "nan" (or "None", "<NA>")
MISSING_TEXT = frozenset({"nan", "None", "<NA>", "NaT"})


def with_nulls(frame: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """``frame`` with the missing-value texts of its categorical columns turned back into nulls.

    >>> with_nulls(pd.DataFrame({"plan": ["a", "nan", None]}), ["plan"])["plan"].isna().tolist()
    [False, True, True]
    """
    cols = [c for c in categorical if c in frame and frame[c].isin(MISSING_TEXT).any()]
    if not cols:
        return frame
    out = frame.copy()
    for c in cols:
        out[c] = out[c].where(~out[c].isin(MISSING_TEXT), None)
    return out


@dataclass(frozen=True)
class QualityResult:
    """One data-quality check of one feature (or of the whole batch: ``feature`` None)."""

    check: str  # null_share | range | new_categories | vanished_categories | volume | freshness
    feature: str | None
    value: float
    limit: str
    passed: bool
    detail: str = ""

    def summary(self) -> str:
        where = f"{self.feature}: " if self.feature else ""
        return f"{where}{self.check} {self.value:.4g} (limit {self.limit}){' ' + self.detail if self.detail else ''}"


@dataclass
class ViewProfile:
    """The reference of one feature view: drift summary plus quality facts of the reference window."""

    summary: ReferenceSummary
    columns: list[str]  # every feature of the view (quality checks), drift-tested or not
    ranges: dict[str, tuple[float, float]]
    categories: dict[str, dict[str, float]]  # category -> share of the reference rows
    rows_per_day: float

    @classmethod
    def fit(cls, reference: pd.DataFrame, numeric: list[str], categorical: list[str], check: ViewCheck, start: Any, end: Any) -> ViewProfile:
        """Profile the reference rows of the window ``[start, end)``."""
        reference = with_nulls(reference, categorical)
        d = check.drift
        unknown = sorted(set(d.skip) - set(numeric) - set(categorical))
        if unknown:
            raise ConfigError(f"drift.skip names {unknown}, which are not features of the view", fix=f"use some of {', '.join([*numeric, *categorical])}")
        tested_num, tested_cat = [c for c in numeric if c not in d.skip], [c for c in categorical if c not in d.skip]
        summary = ReferenceSummary.fit(reference, tested_num, tested_cat, d.numeric_test, d.categorical_test, d.correction, d.p_value, exact=True)
        # a batch's extremes exceed the reference's by chance; the margin keeps that from failing clean batches
        margin = check.quality.range_margin
        lows, highs = reference[numeric].min(), reference[numeric].max()
        ranges = {c: (float(lows[c] - margin * (highs[c] - lows[c])), float(highs[c] + margin * (highs[c] - lows[c]))) for c in numeric}
        ranges.update({c: tuple(map(float, r)) for c, r in check.quality.ranges.items()})  # type: ignore[misc]
        cats = {c: {str(k): float(v) for k, v in reference[c].dropna().astype(str).value_counts(normalize=True).items()} for c in categorical}
        days = max((_utc(end) - _utc(start)) / pd.Timedelta(days=1), 1e-9)
        return cls(summary, [*numeric, *categorical], ranges, cats, len(reference) / days)


@dataclass
class ViewReport:
    """The outcome of checking one batch: drift per feature, quality checks, and the verdict."""

    view: str
    window: dict[str, Any]
    rows: int
    drift: list[TestResult]
    quality: list[QualityResult]
    on_fail: str
    models: list[str] = field(default_factory=list)  # filled by the fan-out
    blocked: bool = False  # set by materialize_and_check when the batch stayed out of the online store

    @property
    def failed_quality(self) -> list[QualityResult]:
        return [q for q in self.quality if not q.passed]

    @property
    def passed(self) -> bool:
        """True when every quality check passed (drift is reported, not blocking)."""
        return not self.failed_quality

    @property
    def verdict(self) -> str:
        """``"passed"``, ``"blocked"`` (failed, kept out of the online store) or ``"warned"`` (failed, reported only)."""
        return "passed" if self.passed else ("blocked" if self.blocked else "warned")

    @property
    def drifted_features(self) -> list[str]:
        return [r.feature for r in self.drift if r.drift and r.feature]

    @property
    def affected_features(self) -> list[str]:
        """Features that drifted or failed a quality check, in first-seen order."""
        names = self.drifted_features + [q.feature for q in self.failed_quality if q.feature]
        return list(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        return json_safe({
            "view": self.view, "window": self.window, "rows": self.rows, "passed": self.passed, "verdict": self.verdict, "blocked": self.blocked,
            "on_fail": self.on_fail, "drifted_features": self.drifted_features, "affected_features": self.affected_features,
            "models": self.models, "drift": [r.to_dict() for r in self.drift], "quality": [dataclasses.asdict(q) for q in self.quality],
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def lines(self) -> list[str]:
        """A readable summary: the verdict, then each drifted feature and failed check."""
        verdict = "passed" if self.passed else ("BLOCKED" if self.blocked else "FAILED")
        out = [f"{self.view} {self.window.get('start')}..{self.window.get('end')}: {self.rows} rows, quality {verdict}, {len(self.drifted_features)} drifted feature(s)"]
        out += [f"  drift {r.feature}: {r.test} p={r.p_value:.3g} < {r.threshold:.3g}" for r in self.drift if r.drift and r.p_value is not None and r.threshold is not None]
        out += [f"  quality {q.summary()}" for q in self.failed_quality]
        if self.models:
            out.append(f"  models reading it: {', '.join(self.models)}")
        return out


def _quality(batch: pd.DataFrame, profile: ViewProfile, check: ViewCheck, start: Any, end: Any) -> list[QualityResult]:
    q = check.quality
    n = len(batch)
    out: list[QualityResult] = []
    for col in profile.columns:
        share = float(batch[col].isna().mean()) if n and col in batch else 1.0
        out.append(QualityResult("null_share", col, share, f"<= {q.max_null_share}", share <= q.max_null_share))
    for col, (low, high) in profile.ranges.items():
        values = pd.to_numeric(batch[col], errors="coerce").dropna() if col in batch else pd.Series(dtype=float)
        share = float(((values < low) | (values > high)).mean()) if len(values) else 0.0
        out.append(QualityResult("range", col, share, f"<= {q.max_out_of_range_share} outside [{low:.4g}, {high:.4g}]", share <= q.max_out_of_range_share))
    for col, ref_shares in profile.categories.items():
        values = batch[col].dropna().astype(str) if col in batch else pd.Series(dtype=str)
        seen = set(values.unique())
        new = sorted(seen - set(ref_shares))
        share = float(values.isin(new).mean()) if len(values) else 0.0
        out.append(QualityResult("new_categories", col, share, f"<= {q.max_new_category_share}", share <= q.max_new_category_share, ", ".join(new[:5])))
        # a category this common in the reference is expected at least once in a batch this size
        expected = [k for k, s in ref_shares.items() if s >= q.min_vanished_category_share and s * len(values) >= 5]
        vanished = sorted(set(expected) - seen)
        out.append(QualityResult("vanished_categories", col, float(len(vanished)), "0", not vanished, ", ".join(vanished[:5])))
    days = (_utc(end) - _utc(start)) / pd.Timedelta(days=1)
    expected_rows = profile.rows_per_day * days
    ratio = n / expected_rows if expected_rows > 0 else float("inf")
    out.append(QualityResult("volume", None, ratio, f"[{q.volume.min_ratio}, {q.volume.max_ratio}] x {expected_rows:.0f} expected rows",
                             q.volume.min_ratio <= ratio <= q.volume.max_ratio))
    end_ts = _utc(end)
    newest = _utc(batch[TIMESTAMP].max()) if n else None
    staleness = (end_ts - newest) / pd.Timedelta(hours=1) if newest is not None else float("inf")
    limit = pd.Timedelta(q.max_staleness) / pd.Timedelta(hours=1)
    out.append(QualityResult("freshness", None, staleness, f"<= {limit:g} hours since the newest event", staleness <= limit,
                             f"newest event {newest.isoformat() if newest is not None else 'none'}"))
    return out


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _drift(batch: pd.DataFrame, profile: ViewProfile, check: ViewCheck) -> list[TestResult]:
    """The reference's drift tests on the columns with values (an all-null column is a quality failure, not a test)."""
    summary = profile.summary
    usable = [c for c in [*summary.numeric, *summary.categorical] if c in batch and batch[c].notna().sum() >= check.min_rows]
    if not usable:
        return []
    # the Bonferroni budget still counts every feature of the view, so dropping one never loosens it
    kept = dataclasses.replace(summary, numeric={c: v for c, v in summary.numeric.items() if c in usable},
                               categorical={c: v for c, v in summary.categorical.items() if c in usable})
    results = kept.test(batch)
    n_all = len(summary.numeric) + len(summary.categorical)
    if len(usable) == n_all or summary.correction != "bonferroni":
        return results
    threshold = summary.p_value / n_all
    return [dataclasses.replace(r, threshold=threshold, drift=r.p_value is not None and r.p_value < threshold) for r in results]


def check_batch(batch: pd.DataFrame, profile: ViewProfile, check: ViewCheck, start: Any, end: Any, view: str = "") -> ViewReport:
    """Check the rows of one batch (event times in ``[start, end)``) against the view's profile."""
    window = {"start": _utc(start).isoformat(), "end": _utc(end).isoformat()}
    batch = with_nulls(batch, list(profile.categories))
    drift = _drift(batch, profile, check) if len(batch) >= check.min_rows else []
    return ViewReport(view, window, len(batch), drift, _quality(batch, profile, check, start, end), check.on_fail)


__all__ = ["QualityResult", "ViewProfile", "ViewReport", "check_batch", "with_nulls"]

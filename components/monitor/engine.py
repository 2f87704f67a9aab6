"""Run every monitor a policy declares on a reference and a current window; decide.

:func:`run_monitors` validates the inputs, sorts the current window by the policy
timestamp (row positions in ``detected_at`` refer to that order), runs each monitor with
the detectors in ``components.monitor`` and returns a :class:`MonitorReport` holding every
result, a one-line summary per monitor, the data the HTML report plots, and the decision.

>>> import numpy as np, pandas as pd
>>> from components.policy import Policy
>>> policy = Policy.model_validate({"model": "m", "entity": "id", "label": "y", "features": ["x"],
...     "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.8, "min_samples": 50}],
...     "actions": [{"when": ["acc"], "strategy": "full"}]})
>>> rng = np.random.default_rng(0)
>>> def window(start, flip):
...     x = rng.normal(size=400); y = (x > 0).astype(int)
...     y = np.where(rng.random(400) < flip, 1 - y, y)
...     return pd.DataFrame({"event_timestamp": pd.date_range(start, periods=400, freq="h", tz="UTC"),
...                          "x": x, "y": y, "prediction": 1 / (1 + np.exp(-4 * x))})
>>> report = run_monitors(policy, window("2025-01-01", 0.05), window("2025-02-01", 0.4), model_version="1")
>>> report.decision["action"], report.decision["strategy"], report.monitor("acc")["fired"]
('retrain', 'full', True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from components.decision import decide
from components.monitor.report import MonitorReport
from components.monitor.results import TestResult
from components.monitor.validate import validate_inputs
from components.policy import (
    LOWER_IS_BETTER,
    ConceptDriftMonitor,
    FeatureDriftMonitor,
    LabelDriftMonitor,
    PerformanceMonitor,
    Policy,
    PredictionDriftMonitor,
    SequentialMonitor,
)

MAX_PLOTTED_FEATURES = 12
HIST_BINS = 20
MAX_CATEGORIES = 30
PRED_LABEL = "_driftloop_pred_label"  # thresholded prediction, added for slicing

Progress = Callable[[str], None]


def run_monitors(policy: Policy, reference: pd.DataFrame, current: pd.DataFrame, baseline: dict[str, Any] | None = None,
                 model_version: str | None = None, progress: Progress | None = None) -> MonitorReport:
    """Run the policy's monitors and return the report with its decision.

    ``baseline`` holds the champion's metrics as the registry stores them
    (``{"overall": {metric: value}, "segments": {segment: {metric: value}}}``; a flat
    ``{metric: value}`` means overall); metrics it lacks are computed on the reference
    window, which carries predictions and labels too. ``progress`` is called with each
    monitor's name as it finishes.
    """
    warnings = validate_inputs(policy, reference, current)
    ref = _prepare(policy, reference)
    cur = _prepare(policy, current)
    ctx = _Context(policy, ref, cur, baseline or {})
    monitors: list[dict[str, Any]] = []
    for m in policy.monitors:
        entry = _RUNNERS[m.type](ctx, m)
        entry = {"name": m.name, "type": m.type, **entry}
        entry["results"] = [r.to_dict() for r in entry["results"]]
        monitors.append(entry)
        if progress:
            progress(m.name)
    window = _window(policy, cur)
    decision = decide(policy, monitors, model_version, window)
    return MonitorReport(
        model=policy.model, model_version=model_version, window=window, monitors=monitors,
        decision=decision.to_dict(), created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reference_window=_window(policy, ref), warnings=warnings,
    )


# --- shared preparation ---------------------------------------------------------------


def _prepare(policy: Policy, df: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as UTC datetimes, rows in time order (stable, so ties keep input order)."""
    out = df.copy()
    out[policy.timestamp] = pd.to_datetime(out[policy.timestamp], utc=True)
    out = out.sort_values(policy.timestamp, kind="mergesort").reset_index(drop=True)
    if policy.prediction in out.columns:
        out[PRED_LABEL] = (out[policy.prediction] >= 0.5).astype(int)
    return out


def _window(policy: Policy, df: pd.DataFrame) -> dict[str, Any]:
    ts = df[policy.timestamp]
    labelled = int(df[policy.label].notna().sum()) if policy.label in df.columns else 0
    return {"start": ts.iloc[0].isoformat(), "end": ts.iloc[-1].isoformat(), "rows": len(df), "labelled": labelled}


@dataclasses.dataclass
class _Context:
    policy: Policy
    ref: pd.DataFrame
    cur: pd.DataFrame
    baseline: dict[str, Any]

    def scopes(self, m: Any) -> list[tuple[str | None, pd.DataFrame, pd.DataFrame]]:
        """(segment, reference rows, current rows) for the whole window and/or each segment."""
        seg_col = self.policy.segment_column
        if m.segment is not None:
            return [(m.segment, self._seg(self.ref, seg_col, m.segment), self._seg(self.cur, seg_col, m.segment))]
        scopes: list[tuple[str | None, pd.DataFrame, pd.DataFrame]] = [(None, self.ref, self.cur)]
        if m.per_segment and self.policy.segments:
            for value in self.policy.segments.values:
                scopes.append((value, self._seg(self.ref, seg_col, value), self._seg(self.cur, seg_col, value)))
        return scopes

    @staticmethod
    def _seg(df: pd.DataFrame, col: str | None, value: str) -> pd.DataFrame:
        return df[df[col].astype(str) == value]

    def labelled(self, df: pd.DataFrame, scored: bool = False) -> pd.DataFrame:
        """Rows whose label is known (and, if ``scored``, that also have a prediction)."""
        if self.policy.label not in df.columns:
            return df.iloc[0:0]
        keep = df[self.policy.label].notna()
        if scored:
            keep &= df[self.policy.prediction].notna()
        return df[keep]

    def baseline_metric(self, metric: str, segment: str | None) -> float | None:
        """The champion's metric from ``baseline``, else computed on the labelled reference."""
        b = self.baseline
        if segment is not None and metric in ((b.get("segments") or {}).get(segment) or {}):
            return float(b["segments"][segment][metric])
        if segment is None:
            if metric in (b.get("overall") or {}):
                return float(b["overall"][metric])
            if isinstance(b.get(metric), int | float):
                return float(b[metric])
        ref = self.labelled(self.ref, scored=True)
        if segment is not None:
            ref = self._seg(ref, self.policy.segment_column, segment)
        if len(ref) == 0 or ref[self.policy.label].nunique() < 2 and metric in ("auc", "gini"):
            return None
        from components.monitor.performance import compute_metrics

        value = compute_metrics(ref[self.policy.label].astype(int).to_numpy(), ref[self.policy.prediction].to_numpy()).get(metric)
        return None if value is None or not np.isfinite(value) else float(value)


def _insufficient(test: str, n: int, need: int, **labels: Any) -> TestResult:
    return TestResult(test=test, statistic=None, p_value=None, threshold=None, drift=False, status="insufficient_data",
                      details={"n": n, "min_samples": need}, **labels)


def _row_of(positions: np.ndarray, stream_pos: int | None) -> int | None:
    """Map a position in a filtered stream back to its row in the full time-ordered window."""
    if stream_pos is None or stream_pos < 0 or stream_pos >= len(positions):
        return stream_pos
    return int(positions[stream_pos])


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def _p(p: float | None) -> str:
    """A p-value with its relation sign: ``=0.031``, ``=2.6e-25``, ``<1e-300`` (underflow)."""
    if p is None:
        return "=n/a"
    if p == 0:
        return "<1e-300"
    return f"={p:.1e}" if p < 1e-3 else f"={p:.3f}"


# --- feature drift ---------------------------------------------------------------------


def _feature_drift(ctx: _Context, m: FeatureDriftMonitor) -> dict[str, Any]:
    from components.monitor.drift import feature_drift, multivariate_drift
    from components.monitor.psi import psi_test

    policy = ctx.policy
    features = m.features or policy.all_features
    numeric = [f for f in features if f in policy.features]
    categorical = [f for f in features if f in policy.categorical_features]
    tests: list[TestResult] = []
    psis: list[TestResult] = []
    multi: list[TestResult] = []
    for seg, ref, cur in ctx.scopes(m):
        if min(len(ref), len(cur)) < m.min_samples:
            tests.append(_insufficient(m.numeric_test, min(len(ref), len(cur)), m.min_samples, segment=seg))
            continue
        tests += feature_drift(ref, cur, numeric, categorical, numeric_test=m.numeric_test, categorical_test=m.categorical_test,
                               correction=m.correction, p_value=m.p_value, tabular=m.tabular, segment=seg)
        if m.psi is not None:
            for f in features:
                r = psi_test(ref[f], cur[f], bins=m.psi.bins, warn=m.psi.warn, drift=m.psi.drift, categorical=f in categorical)
                psis.append(dataclasses.replace(r, feature=f, segment=seg))
        if m.multivariate:
            r = multivariate_drift(ref, cur, features, method=m.multivariate, p_value=m.p_value, categorical=categorical)
            multi.append(dataclasses.replace(r, segment=seg))
    test_hits = [r for r in tests + multi if r.drift]
    psi_hits = [r for r in psis if r.drift]
    fired = {"test": bool(test_hits), "psi": bool(psi_hits), "either": bool(test_hits or psi_hits)}[m.fire_on]
    # plot each drifted feature once, in the scope where it drifted (overall first)
    first_scope: dict[str, str | None] = {}
    for r in sorted(test_hits + psi_hits, key=lambda r: r.segment is not None):
        if r.feature and r.feature not in first_scope:
            first_scope[r.feature] = r.segment
    distributions = {}
    for f, seg in list(first_scope.items())[:MAX_PLOTTED_FEATURES]:
        ref, cur = (ctx.ref, ctx.cur) if seg is None else (ctx._seg(ctx.ref, policy.segment_column, seg), ctx._seg(ctx.cur, policy.segment_column, seg))
        distributions[f if seg is None else f"{f}[{seg}]"] = _distribution(ref[f], cur[f], f in categorical)
    return {
        "fired": fired,
        "results": tests + psis + multi,
        "summary": _drift_summary(tests, psis, multi, m.fire_on, fired),
        "distributions": distributions,
    }


def _where(r: TestResult) -> str:
    return f"{r.feature}[{r.segment}]" if r.segment else str(r.feature)


def _drift_summary(tests: list[TestResult], psis: list[TestResult], multi: list[TestResult], fire_on: str, fired: bool) -> str:
    done = [r for r in tests if r.status == "ok"]
    if not done and tests:
        r = tests[0]
        return f"insufficient data: {r.details.get('n')} rows < min_samples {r.details.get('min_samples')}"
    parts = []
    hits = sorted((r for r in tests if r.drift), key=lambda r: (r.p_value if r.p_value is not None else 1.0))
    if hits:
        shown = ", ".join(f"{_where(r)} ({r.test} p{_p(r.p_value)})" for r in hits[:4])
        parts.append(f"{len(hits)} of {len(done)} feature tests drifted: {shown}" + (" ..." if len(hits) > 4 else ""))
    elif fire_on != "psi":
        parts.append(f"no feature drifted in {len(done)} tests")
    psi_hits = sorted((r for r in psis if r.drift), key=lambda r: -(r.statistic or 0))
    if psi_hits:
        parts.append("PSI drift: " + ", ".join(f"{_where(r)} {r.statistic:.2f} > {r.threshold:.2f}" for r in psi_hits[:4]))
    elif fire_on != "test" and psis:
        top = max(psis, key=lambda r: r.statistic or 0)
        parts.append(f"PSI below drift threshold (max {_where(top)} {top.statistic:.3f})")
    for r in multi:
        parts.append(f"multivariate {r.test} {'drift' if r.drift else 'no drift'} (p{_p(r.p_value)})")
    return "; ".join(parts)


def _distribution(ref: pd.Series, cur: pd.Series, categorical: bool) -> dict[str, Any]:
    """Reference vs current distribution as shares, for plotting (bins shared by both)."""
    if categorical:
        r = ref.dropna().astype(str).value_counts(normalize=True)
        c = cur.dropna().astype(str).value_counts(normalize=True)
        cats = list((r.add(c, fill_value=0)).sort_values(ascending=False).index[:MAX_CATEGORIES])
        return {"kind": "categorical", "categories": cats, "reference": [float(r.get(k, 0.0)) for k in cats],
                "current": [float(c.get(k, 0.0)) for k in cats]}
    rv, cv = ref.dropna().to_numpy(float), cur.dropna().to_numpy(float)
    both = np.concatenate([rv, cv])
    lo, hi = np.quantile(both, [0.005, 0.995]) if len(both) else (0.0, 1.0)
    if hi <= lo:
        lo, hi = float(both.min()), float(both.max()) + 1e-9
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    rh = np.histogram(np.clip(rv, lo, hi), edges)[0] / max(len(rv), 1)
    ch = np.histogram(np.clip(cv, lo, hi), edges)[0] / max(len(cv), 1)
    return {"kind": "numeric", "edges": edges.tolist(), "reference": rh.tolist(), "current": ch.tolist()}


# --- prediction and label drift ---------------------------------------------------------


def _prediction_drift(ctx: _Context, m: PredictionDriftMonitor) -> dict[str, Any]:
    from components.monitor.drift import prediction_drift
    from components.monitor.psi import psi_test

    col = ctx.policy.prediction
    results: list[TestResult] = []
    for seg, ref, cur in ctx.scopes(m):
        rs, cs = ref[col].dropna(), cur[col].dropna()
        if min(len(rs), len(cs)) < m.min_samples:
            results.append(_insufficient(m.test, min(len(rs), len(cs)), m.min_samples, feature=col, segment=seg))
            continue
        results.append(dataclasses.replace(prediction_drift(rs.to_numpy(), cs.to_numpy(), test=m.test, p_value=m.p_value, segment=seg), feature=col))
        if m.psi is not None:
            r = psi_test(rs, cs, bins=m.psi.bins, warn=m.psi.warn, drift=m.psi.drift, categorical=False)
            results.append(dataclasses.replace(r, feature=col, segment=seg, drift=False, details={**r.details, "informational": True, "psi_drift": r.drift}))
    # the two-sample test decides; PSI is reported alongside (its drift flag kept in details)
    hits = [r for r in results if r.drift]
    tests = [r for r in results if r.test != "psi" and r.status == "ok"]
    if not tests:
        summary = f"insufficient data: {results[0].details.get('n')} predictions < min_samples {m.min_samples}"
    elif hits:
        summary = "; ".join(f"prediction distribution shifted{f' in {r.segment}' if r.segment else ''} ({r.test} stat {r.statistic:.3f}, p{_p(r.p_value)} < {r.threshold})" for r in hits)
    else:
        summary = f"prediction distribution stable ({tests[0].test} p{_p(tests[0].p_value)})"
    psi = [r for r in results if r.test == "psi"]
    if psi:
        summary += f"; PSI {psi[0].statistic:.3f}"
    dist = {col: _distribution(ctx.ref[col], ctx.cur[col], False)} if hits else {}
    return {"fired": bool(hits), "results": results, "summary": summary, "distributions": dist}


def _label_drift(ctx: _Context, m: LabelDriftMonitor) -> dict[str, Any]:
    from components.monitor.drift import label_drift

    label = ctx.policy.label
    results: list[TestResult] = []
    for seg, ref, cur in ctx.scopes(m):
        rl, cl = ctx.labelled(ref), ctx.labelled(cur)
        if min(len(rl), len(cl)) < m.min_samples:
            results.append(_insufficient(m.test, min(len(rl), len(cl)), m.min_samples, feature=label, segment=seg))
            continue
        r = label_drift(rl[label].astype(int).to_numpy(), cl[label].astype(int).to_numpy(), test=m.test, p_value=m.p_value, segment=seg)
        details = {**r.details, "reference_rate": float(rl[label].mean()), "current_rate": float(cl[label].mean())}
        results.append(dataclasses.replace(r, feature=label, details=details))
    ok = [r for r in results if r.status == "ok"]
    hits = [r for r in ok if r.drift]
    if not ok:
        r = results[0]
        summary = f"insufficient data: {r.details.get('n')} labelled rows < min_samples {m.min_samples}"
    else:
        r = hits[0] if hits else ok[0]
        where = f" in {r.segment}" if r.segment else ""
        summary = (f"label rate{where} {r.details['reference_rate']:.3f} -> {r.details['current_rate']:.3f} "
                   f"({r.test} p{_p(r.p_value)} {'<' if r.drift else '>='} {r.threshold})")
    return {"fired": bool(hits), "results": results, "summary": summary}


# --- performance -----------------------------------------------------------------------


def _performance(ctx: _Context, m: PerformanceMonitor) -> dict[str, Any]:
    from components.monitor.performance import metric_check

    policy = ctx.policy
    results: list[TestResult] = []
    for seg, _ref, cur in ctx.scopes(m):
        lab = ctx.labelled(cur, scored=True)
        base = ctx.baseline_metric(m.metric, seg)
        drop = m.max_relative_drop
        if drop is not None and base is None:
            if m.min is None and m.max is None:  # nothing to compare with: say so, do not guess
                results.append(_insufficient("metric", len(lab), m.min_samples, metric=m.metric, segment=seg))
                continue
            drop = None  # no baseline: check the absolute limits only
        y_true = lab[policy.label].astype(int).to_numpy() if len(lab) else np.array([], dtype=int)
        y_score = lab[policy.prediction].to_numpy(float) if len(lab) else np.array([], dtype=float)
        results.append(metric_check(y_true, y_score, m.metric, baseline=base, min=m.min, max=m.max, max_relative_drop=drop,
                                    confidence=m.confidence, min_samples=m.min_samples, segment=seg))
    hits = [r for r in results if r.drift]
    entry: dict[str, Any] = {"fired": bool(hits), "results": results, "summary": _performance_summary(m, results)}
    if hits and m.slice_by:
        seg = hits[0].segment
        cur = ctx.labelled(ctx.cur if seg is None else ctx._seg(ctx.cur, policy.segment_column, seg), scored=True)
        ref = ctx.labelled(ctx.ref if seg is None else ctx._seg(ctx.ref, policy.segment_column, seg), scored=True)
        entry["slices"] = _slices(ctx, cur, ref, m.slice_by)
    return entry


def _performance_summary(m: PerformanceMonitor, results: list[TestResult]) -> str:
    parts = []
    for r in sorted(results, key=lambda r: not r.drift):
        d = r.details
        where = f" [{r.segment}]" if r.segment else ""
        n = d.get("n")
        if r.status != "ok":
            parts.append(f"{m.metric}{where}: insufficient data (n={n} < {d.get('min_samples', m.min_samples)})")
            continue
        ci = d.get("ci") or (d.get("ci_low"), d.get("ci_high"))
        ci_text = f", {int(round(m.confidence * 100))}% CI {_fmt(ci[0])}-{_fmt(ci[1])}" if ci and ci[0] is not None else ""
        base = d.get("baseline")
        value = r.statistic
        if m.max_relative_drop is not None and base is not None:
            drop = d.get("relative_drop")
            if drop is None and value is not None:
                drop = (base - value) / abs(base) if m.metric not in LOWER_IS_BETTER else (value - base) / abs(base)
            cmp = ">" if r.drift else "<="
            parts.append(f"{m.metric}{where} {_fmt(value)} vs baseline {_fmt(base)} (drop {drop:.1%} {cmp} {m.max_relative_drop:.0%}; n={n}{ci_text})")
        elif m.min is not None and (m.max is None or value is None or value < m.min or not r.drift):
            cmp = "<" if r.drift else ">="
            parts.append(f"{m.metric}{where} {_fmt(value)} {cmp} {m.min} (n={n}{ci_text})")
        else:
            cmp = ">" if r.drift else "<="
            parts.append(f"{m.metric}{where} {_fmt(value)} {cmp} {m.max} (n={n}{ci_text})")
        if len(parts) >= 3:
            break
    return "; ".join(parts)


def _slices(ctx: _Context, cur: pd.DataFrame, ref: pd.DataFrame, slice_by: list[str]) -> list[dict[str, Any]]:
    from components.monitor.slicing import rank_slices

    if len(cur) == 0:
        return []
    label = ctx.policy.label
    cur = cur.assign(**{label: cur[label].astype(int)})
    ref = ref.assign(**{label: ref[label].astype(int)}) if len(ref) else None
    return rank_slices(cur, label, PRED_LABEL, slice_by, baseline_df=ref)


# --- concept drift on the error stream --------------------------------------------------


def _concept_drift(ctx: _Context, m: ConceptDriftMonitor) -> dict[str, Any]:
    from components.monitor.concept import detect_on_stream

    policy = ctx.policy
    results: list[TestResult] = []
    first_hit: tuple[str | None, pd.DataFrame, pd.DataFrame] | None = None
    for seg, ref, cur in ctx.scopes(m):
        lab_cur, lab_ref = ctx.labelled(cur, scored=True), ctx.labelled(ref, scored=True)
        if len(lab_cur) < m.min_samples:
            results.append(_insufficient(m.detector, len(lab_cur), m.min_samples, metric="error_rate", segment=seg))
            continue
        errors = (lab_cur[PRED_LABEL] != lab_cur[policy.label].astype(int)).to_numpy(int)
        ref_errors = (lab_ref[PRED_LABEL] != lab_ref[policy.label].astype(int)).to_numpy(int) if len(lab_ref) else None
        r = detect_on_stream(errors, detector=m.detector, reference_errors=ref_errors, ert=m.ert, window_size=m.window_size,
                             delta=m.delta, segment=seg)
        positions = lab_cur.index.to_numpy()  # rows of the full time-ordered window
        details = {**r.details, "n": len(errors), "current_error_rate": float(errors.mean())}
        if ref_errors is not None:
            details["reference_error_rate"] = float(ref_errors.mean())
        row = _row_of(positions, r.detected_at)
        if r.detected_at is not None:
            details["stream_position"] = r.detected_at
            details["detected_timestamp"] = ctx.cur[policy.timestamp].iloc[row].isoformat() if row is not None and 0 <= row < len(ctx.cur) else None
        details["timestamps"] = _thin_timestamps(lab_cur[policy.timestamp])
        results.append(dataclasses.replace(r, metric="error_rate", segment=seg, detected_at=row, details=details))
        if r.drift and first_hit is None:
            first_hit = (seg, lab_cur, lab_ref)
    hits = [r for r in results if r.drift]
    entry: dict[str, Any] = {"fired": bool(hits), "results": results, "summary": _concept_summary(m, results)}
    if first_hit and m.slice_by:
        _seg, lab_cur, lab_ref = first_hit
        detected = next(r for r in hits if r.segment == _seg).detected_at
        # slice the errors after the detection point, where the new concept lives
        after = lab_cur[lab_cur.index >= detected] if detected is not None else lab_cur
        entry["slices"] = _slices(ctx, after if len(after) >= m.min_samples // 2 else lab_cur, lab_ref, m.slice_by)
    return entry


def _thin_timestamps(ts: pd.Series, limit: int = 2000) -> dict[str, Any]:
    """Timestamps of the error stream, thinned, so the HTML can put the trace on a time axis."""
    step = max(1, len(ts) // limit)
    return {"step": step, "values": [t.isoformat() for t in ts.iloc[::step]]}


def _concept_summary(m: ConceptDriftMonitor, results: list[TestResult]) -> str:
    parts = []
    for r in results:
        where = f" [{r.segment}]" if r.segment else ""
        d = r.details
        if r.status != "ok":
            parts.append(f"{m.detector}{where}: insufficient data ({d.get('n')} labelled rows < {m.min_samples})")
        elif r.drift:
            when = f" at {d['detected_timestamp']}" if d.get("detected_timestamp") else ""
            ref_rate = f"reference {d['reference_error_rate']:.3f}, " if "reference_error_rate" in d else ""
            after = d.get("error_rate_after")
            rates = f"{ref_rate}before {d.get('error_rate_before', float('nan')):.3f}, after {after:.3f}" if after is not None else f"{d['current_error_rate']:.3f}"
            parts.append(f"{m.detector}{where} detected an error-rate change at row {r.detected_at}{when} (error rate {rates}; n={d['n']})")
        else:
            parts.append(f"{m.detector}{where}: no change in the error stream (error rate {d['current_error_rate']:.3f}, n={d['n']})")
    return "; ".join(parts)


# --- sequential (SPRT per cohort) ------------------------------------------------------


def _sequential(ctx: _Context, m: SequentialMonitor) -> dict[str, Any]:
    from components.monitor.sequential import sprt_by_cohort

    outcome = m.outcome or ctx.policy.label
    if outcome not in ctx.cur.columns or outcome not in ctx.ref.columns:
        r = _insufficient("sprt", 0, m.min_samples, metric=outcome)
        return {"fired": False, "results": [r], "summary": f"insufficient data: no {outcome!r} column yet"}
    cur = ctx.cur[ctx.cur[outcome].notna()]
    ref = ctx.ref[ctx.ref[outcome].notna()]
    if m.segment is not None:
        cur, ref = ctx._seg(cur, ctx.policy.segment_column, m.segment), ctx._seg(ref, ctx.policy.segment_column, m.segment)
    baseline = {str(k): float(v) for k, v in ref.groupby(ref[m.cohort_column].astype(str))[outcome].mean().items()}
    cur = cur.assign(**{m.cohort_column: cur[m.cohort_column].astype(str), outcome: cur[outcome].astype(int)})
    positions = cur.index.to_numpy()
    raw = sprt_by_cohort(cur.reset_index(drop=True), m.cohort_column, outcome, baseline, m.relative_drop, m.alpha, m.beta)
    labels = cur[m.cohort_column].to_numpy()
    values = cur[outcome].to_numpy(float)
    results = []
    for r in raw:
        row = _row_of(positions, r.detected_at)
        details = dict(r.details)
        if r.status == "ok":
            details["trace"] = _llr_trace(values[labels == r.segment], details)
        if r.detected_at is not None and row is not None:
            details["detected_timestamp"] = ctx.cur[ctx.policy.timestamp].iloc[row].isoformat()
        results.append(dataclasses.replace(r, metric=r.metric or outcome, detected_at=row, details=details))
    hits = [r for r in results if r.drift]
    if hits:
        summary = "; ".join(
            f"cohort {r.segment}: {outcome} rate {r.details.get('observed_rate', float('nan')):.3f} vs baseline {baseline.get(str(r.segment), float('nan')):.3f} "
            f"(SPRT {int(m.relative_drop * 100)}% drop accepted at row {r.detected_at}"
            f"{', ' + r.details['detected_timestamp'] if r.details.get('detected_timestamp') else ''})"
            for r in sorted(hits, key=lambda r: r.detected_at if r.detected_at is not None else 1 << 62))
    else:
        summary = f"no cohort's {outcome} rate dropped by {m.relative_drop:.0%} ({len(results)} cohorts tested)"
    return {"fired": bool(hits), "results": results, "summary": summary}


def _llr_trace(x: np.ndarray, d: dict[str, Any], points: int = 300) -> list[dict[str, float]]:
    """The SPRT's cumulative log-likelihood ratio over one cohort's outcomes, for plotting.

    The increments of ``sequential.sprt`` (:func:`~components.monitor.sequential.llr_increments`)
    up to where the test stopped (``n_tested``), thinned to about ``points`` points.
    """
    from components.monitor.sequential import llr_increments

    llr = np.cumsum(llr_increments(x[: d.get("n_tested", len(x))], d["p0"], d["p1"]))
    if len(llr) == 0:
        return []
    keep = np.unique(np.r_[np.linspace(0, len(llr) - 1, min(points, len(llr))).astype(int), len(llr) - 1])
    return [{"n": int(i + 1), "llr": float(llr[i])} for i in keep]


_RUNNERS: dict[str, Callable[[_Context, Any], dict[str, Any]]] = {
    "feature_drift": _feature_drift,
    "prediction_drift": _prediction_drift,
    "label_drift": _label_drift,
    "performance": _performance,
    "concept_drift": _concept_drift,
    "sequential": _sequential,
}

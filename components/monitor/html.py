"""A self-contained report.html rendered from the monitor report alone.

Text first (decision, reasons, a table per monitor) so the page reads without JavaScript;
plots (plotly, its JS inlined once in the page head) for drifted feature distributions,
performance against baseline and threshold with confidence intervals, the concept-drift
detector trace with its detection point, and the SPRT log-likelihood ratio per cohort.

>>> from components.monitor.results import MonitorReport
>>> report = MonitorReport(model="churn", model_version="3", window={"start": "a", "end": "b", "rows": 10},
...     monitors=[], decision={"action": "none", "strategy": None, "reasons": []}, created_at="now")
>>> page = render_html(report, include_plotlyjs=False)
>>> "<h1>driftloop monitor report: churn v3</h1>" in page, "Decision: none" in page
(True, True)
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from components.monitor.results import MonitorReport

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
.decision{padding:1rem 1.2rem;border-radius:6px;border:1px solid #ccc;background:#f6f8fa}
.decision.retrain{border-color:#d73a49;background:#ffeef0}.decision.alert{border-color:#dbab09;background:#fffbdd}
.decision.none{border-color:#28a745;background:#f0fff4}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}td,th{border:1px solid #ddd;padding:.25rem .55rem;text-align:left}
th{background:#f6f8fa}.fired{color:#d73a49;font-weight:600}.ok{color:#28a745}.muted{color:#666;font-size:.85rem}
code{background:#f3f3f3;padding:0 .25rem;border-radius:3px}
"""
MAX_TABLE_ROWS = 40


def render_html(report: MonitorReport, include_plotlyjs: bool = True) -> str:
    """The whole page as a string (plotly's JS inlined once when ``include_plotlyjs``)."""
    body: list[str] = [_header(report)]
    body.append(_overview(report))
    for m in report.monitors:
        body.append(_monitor_section(m))
    head_js = ""
    if include_plotlyjs:
        from plotly.offline import get_plotlyjs

        head_js = f"<script type=\"text/javascript\">{get_plotlyjs()}</script>"
    title = html.escape(f"driftloop: {report.model} monitor report")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{_CSS}</style>{head_js}</head><body>{''.join(body)}</body></html>")


def write_html(report: MonitorReport, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` and return it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report), encoding="utf-8")
    return out


# --- text sections ---------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4g}"
    return _e(value)


def _header(report: MonitorReport) -> str:
    d = report.decision
    version = f" v{report.model_version}" if report.model_version else ""
    w = report.window
    action = d.get("action", "none")
    detail = ", ".join(f"{k} {_e(d[k])}" for k in ("strategy", "window", "cohort", "upweight") if d.get(k))
    reasons = "".join(f"<li>{_e(r)}</li>" for r in d.get("reasons", [])) or "<li>no monitor fired</li>"
    parts = [
        f"<h1>driftloop monitor report: {_e(report.model)}{_e(version)}</h1>",
        f"<p class=\"muted\">current window {_e(w.get('start'))} to {_e(w.get('end'))}, {_e(w.get('rows'))} rows"
        f" ({_e(w.get('labelled', 'n/a'))} labelled); created {_e(report.created_at)}</p>",
        f"<div class=\"decision {_e(action)}\"><h2 style=\"margin-top:0;border:0\">Decision: {_e(action)}"
        f"{' (' + detail + ')' if detail else ''}</h2><ul>{reasons}</ul>",
    ]
    if d.get("idempotency_key"):
        parts.append(f"<p class=\"muted\">idempotency key <code>{_e(d['idempotency_key'])}</code></p>")
    parts.append("</div>")
    for w_text in report.warnings:
        parts.append(f"<p class=\"fired\">warning: {_e(w_text)}</p>")
    for n in report.notifications:
        parts.append(f"<p class=\"muted\">notification via {_e(n.get('channel'))}: {_e(n.get('status'))} ({_e(n.get('detail'))})</p>")
    return "".join(parts)


def _overview(report: MonitorReport) -> str:
    rows = "".join(
        f"<tr><td><a href=\"#m-{_e(m['name'])}\">{_e(m['name'])}</a></td><td>{_e(m['type'])}</td>"
        f"<td class=\"{'fired' if m.get('fired') else 'ok'}\">{'FIRED' if m.get('fired') else 'ok'}</td><td>{_e(m.get('summary'))}</td></tr>"
        for m in report.monitors)
    return f"<h2>Monitors</h2><table><tr><th>monitor</th><th>type</th><th>verdict</th><th>summary</th></tr>{rows}</table>"


def _results_table(results: list[dict[str, Any]]) -> str:
    shown = sorted(results, key=lambda r: (not r.get("drift"), r.get("p_value") if r.get("p_value") is not None else 2.0))[:MAX_TABLE_ROWS]
    rows = "".join(
        f"<tr><td>{_e(r.get('feature') or r.get('metric'))}</td><td>{_e(r.get('segment') or 'all')}</td><td>{_e(r.get('test'))}</td>"
        f"<td>{_num(r.get('statistic'))}</td><td>{_num(r.get('p_value'))}</td><td>{_num(r.get('threshold'))}</td>"
        f"<td class=\"{'fired' if r.get('drift') else 'ok'}\">{'drift' if r.get('drift') else r.get('status', 'ok')}</td>"
        f"<td>{_e(r.get('detected_at'))}</td></tr>"
        for r in shown)
    more = f"<p class=\"muted\">{len(results) - len(shown)} more results in report.json</p>" if len(results) > len(shown) else ""
    return ("<table><tr><th>feature / metric</th><th>segment</th><th>test</th><th>statistic</th><th>p-value</th>"
            f"<th>threshold</th><th>verdict</th><th>detected at row</th></tr>{rows}</table>{more}")


def _slices_table(slices: list[dict[str, Any]]) -> str:
    if not slices:
        return ""
    cols = list(dict.fromkeys(k for s in slices[:MAX_TABLE_ROWS] for k in s))
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    rows = "".join("<tr>" + "".join(f"<td>{_num(s.get(c))}</td>" for c in cols) + "</tr>" for s in slices[:MAX_TABLE_ROWS])
    return f"<h3>Slices ranked by their share of the errors</h3><table><tr>{head}</tr>{rows}</table>"


def _monitor_section(m: dict[str, Any]) -> str:
    verdict = "<span class=\"fired\">FIRED</span>" if m.get("fired") else "<span class=\"ok\">ok</span>"
    parts = [f"<h2 id=\"m-{_e(m['name'])}\">{_e(m['name'])} <span class=\"muted\">({_e(m['type'])})</span> {verdict}</h2>",
             f"<p>{_e(m.get('summary'))}</p>"]
    for figure in _figures(m):
        parts.append(figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))
    parts.append(_results_table(m.get("results", [])))
    parts.append(_slices_table(m.get("slices", [])))
    return "".join(parts)


# --- plots -----------------------------------------------------------------------------


def _figures(m: dict[str, Any]) -> list[Any]:
    figs: list[Any] = []
    for feature, dist in (m.get("distributions") or {}).items():
        figs.append(_distribution_figure(feature, dist))
    results = [r for r in m.get("results", []) if r.get("status", "ok") == "ok"]
    if m["type"] == "performance" and results:
        figs.append(_performance_figure(m["name"], results))
    if m["type"] == "concept_drift":
        figs += [f for r in results if (f := _trace_figure(m["name"], r)) is not None]
    if m["type"] == "sequential" and results:
        f = _sprt_figure(m["name"], results)
        if f is not None:
            figs.append(f)
    return figs


# plotly_white's look, spelled out: loading the named template costs ~0.3 s of CPU per
# process, a tenth of a whole `driftloop monitor` run on 100k rows
_AXIS = {"gridcolor": "#ebf0f8", "linecolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "ticks": ""}
_LOOK = {"template": None, "paper_bgcolor": "white", "plot_bgcolor": "white", "xaxis": _AXIS, "yaxis": _AXIS,
         "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3"]}


def _layout(fig: Any, title: str, **kw: Any) -> Any:
    fig.update_layout(title=title, height=340, margin={"l": 50, "r": 20, "t": 50, "b": 40}, **_LOOK)
    fig.update_layout(**kw)
    return fig


def _distribution_figure(feature: str, dist: dict[str, Any]) -> Any:
    import plotly.graph_objects as go

    if dist["kind"] == "categorical":
        x = dist["categories"]
    else:
        edges = dist["edges"]
        x = [(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)]
    fig = go.Figure([go.Bar(x=x, y=dist["reference"], name="reference", opacity=0.7),
                     go.Bar(x=x, y=dist["current"], name="current", opacity=0.7)])
    return _layout(fig, f"{feature}: reference vs current", barmode="group", yaxis_title="share of rows")


def _performance_figure(name: str, results: list[dict[str, Any]]) -> Any:
    import plotly.graph_objects as go

    labels = [r.get("segment") or "all" for r in results]
    values = [r.get("statistic") for r in results]
    ci = [_ci(r) for r in results]
    plus = [(hi - v) if hi is not None and v is not None else 0 for v, (_lo, hi) in zip(values, ci, strict=True)]
    minus = [(v - lo) if lo is not None and v is not None else 0 for v, (lo, _hi) in zip(values, ci, strict=True)]
    colors = ["#d73a49" if r.get("drift") else "#2c7be5" for r in results]
    fig = go.Figure(go.Bar(x=labels, y=values, name="current", marker_color=colors,
                           error_y={"type": "data", "array": plus, "arrayminus": minus, "visible": True}))
    baselines = [r.get("details", {}).get("baseline") for r in results]
    if any(b is not None for b in baselines):
        fig.add_trace(go.Scatter(x=labels, y=baselines, mode="markers", name="baseline", marker={"symbol": "diamond", "size": 12, "color": "#222"}))
    thresholds = [r.get("threshold") for r in results]
    if any(t is not None for t in thresholds):
        fig.add_trace(go.Scatter(x=labels, y=thresholds, mode="markers+lines", name="threshold", line={"dash": "dash", "color": "#d73a49"},
                                 marker={"symbol": "line-ew-open", "size": 30}))
    metric = results[0].get("metric") or results[0].get("test")
    return _layout(fig, f"{name}: {metric} per segment vs baseline and threshold", yaxis_title=str(metric))


def _ci(r: dict[str, Any]) -> tuple[float | None, float | None]:
    d = r.get("details", {})
    ci = d.get("ci")
    if isinstance(ci, list | tuple) and len(ci) == 2:
        return ci[0], ci[1]
    return d.get("ci_low"), d.get("ci_high")


def _series(trace: Any, *keys: str) -> list[Any] | None:
    """The first of ``keys`` in a trace: rows like ``[{"t": 3, "statistic": 0.2}, ...]`` or a dict of lists."""
    if isinstance(trace, list) and trace and isinstance(trace[0], dict):
        key = next((k for k in keys if k in trace[0]), None)
        return [row.get(key) for row in trace] if key else None
    if isinstance(trace, dict):
        for k in keys:
            if isinstance(trace.get(k), list):
                return list(trace[k])
    return None


def _trace_figure(name: str, r: dict[str, Any]) -> Any | None:
    import plotly.graph_objects as go

    d = r.get("details", {})
    trace = d.get("trace")
    y = _series(trace, "statistic", "value")
    if not y:
        return None
    x_idx = _series(trace, "t", "position") or list(range(len(y)))
    ts = d.get("timestamps", {})
    x: list[Any] = x_idx
    if ts.get("values"):
        step = ts.get("step", 1)
        vals = ts["values"]
        x = [vals[min(int(i) // step, len(vals) - 1)] for i in x_idx]
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines", name=str(d.get("trace_label") or "detector statistic")))
    thr = _series(trace, "threshold")
    if thr:
        fig.add_trace(go.Scatter(x=x[: len(thr)], y=thr, mode="lines", name="threshold", line={"dash": "dash", "color": "#d73a49"}))
    if d.get("detected_timestamp") or d.get("stream_position") is not None:
        at = d.get("detected_timestamp") if ts.get("values") else d.get("stream_position")
        fig.add_vline(x=at, line={"color": "#d73a49", "width": 2})
        finite = [v for v in y if v is not None]  # online detectors have no statistic while warming up
        fig.add_annotation(x=at, y=max(finite) if finite else 0, text="detected", showarrow=False, yshift=10, font={"color": "#d73a49"})
    where = f" [{r['segment']}]" if r.get("segment") else ""
    return _layout(fig, f"{name}{where}: {r.get('test')} on the error stream", xaxis_title="time" if ts.get("values") else "labelled row")


def _sprt_figure(name: str, results: list[dict[str, Any]]) -> Any | None:
    import plotly.graph_objects as go

    fig = go.Figure()
    upper = lower = None
    drew = False
    for r in results:
        d = r.get("details", {})
        trace = d.get("trace")
        y = _series(trace, "llr")
        if not y:
            continue
        x = _series(trace, "n") or list(range(1, len(y) + 1))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{r.get('segment')}{' (drop)' if r.get('drift') else ''}"))
        upper, lower = d.get("upper", upper), d.get("lower", lower)
        drew = True
    if not drew:
        return None
    if upper is not None:
        fig.add_hline(y=upper, line={"dash": "dash", "color": "#d73a49"}, annotation_text="accept drop (H1)")
    if lower is not None:
        fig.add_hline(y=lower, line={"dash": "dash", "color": "#28a745"}, annotation_text="accept no drop (H0)")
    return _layout(fig, f"{name}: SPRT log-likelihood ratio per cohort", xaxis_title="observations in cohort", yaxis_title="log LR")

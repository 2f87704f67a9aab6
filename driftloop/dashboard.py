"""The demo dashboard: one self-contained HTML page with the whole loop on a timeline.

It is rendered from ``summary.json`` alone (see :mod:`driftloop.demo`): metrics per period
against their thresholds, drift statistics per period, decisions, and for each canary
rollout the traffic share and each canary check against its threshold per step (the
controller's own check results, :mod:`serving.canary.chart`) with its promote or rollback outcome.
Plotly's JavaScript is inlined once, so the page works offline and from a file.

>>> html = render_dashboard({"scenario": "churn", "periods": [], "events": [], "rollouts": []})
>>> "<h1>driftloop demo: churn</h1>" in html and "cdn" not in html.lower()
True
"""

from __future__ import annotations

import html as html_lib
import json
import math
from pathlib import Path
from typing import Any

_COLORS = {"retrain": "#e67e22", "alert": "#8e44ad", "promoted": "#27ae60", "rolled_back": "#c0392b"}


def _esc(value: Any) -> str:
    return html_lib.escape(str(value))


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _metrics_figure(summary: dict[str, Any]) -> Any:
    import plotly.graph_objects as go

    periods = summary.get("periods", [])
    fig = go.Figure()
    series: dict[tuple[str, str], list[tuple[str, float]]] = {}
    thresholds: dict[tuple[str, str], float] = {}
    for p in periods:
        for m in p.get("metrics", []):
            key = (m["metric"], m.get("segment") or "overall")
            if m.get("value") is not None:
                series.setdefault(key, []).append((p["period"], m["value"]))
            if m.get("threshold") is not None:
                thresholds[key] = m["threshold"]
    for (metric, segment), points in sorted(series.items()):
        fig.add_trace(
            go.Scatter(
                x=[x for x, _ in points], y=[y for _, y in points], mode="lines+markers",
                name=f"{metric} ({segment})",
            )
        )
        if (metric, segment) in thresholds:
            fig.add_trace(
                go.Scatter(
                    x=[points[0][0], points[-1][0]], y=[thresholds[(metric, segment)]] * 2, mode="lines",
                    line={"dash": "dash"}, name=f"threshold {metric} ({segment})",
                )
            )
    _mark_events(fig, summary)
    fig.update_layout(title="Live performance per period (labels joined after their delay)", height=380,
                      margin={"t": 50, "b": 40}, xaxis_title="period", yaxis_title="metric",
                      xaxis={"type": "category"})
    return fig


def _mark_events(fig: Any, summary: dict[str, Any]) -> None:
    for event in summary.get("events", []):
        if event.get("action") in ("retrain", "alert"):
            fig.add_vline(x=event["period"], line_color=_COLORS[event["action"]], line_dash="dot")
    for rollout in summary.get("rollouts", []):
        if rollout.get("period"):
            fig.add_vline(x=rollout["period"], line_color=_COLORS.get(rollout.get("outcome", ""), "#555"), line_width=3)


def _drift_figure(summary: dict[str, Any]) -> Any:
    import plotly.graph_objects as go

    periods = [p["period"] for p in summary.get("periods", [])]
    features = sorted({d["feature"] for p in summary.get("periods", []) for d in p.get("drift", []) if d.get("feature")})
    z = []
    text = []
    for feature in features:
        row, row_text = [], []
        for p in summary.get("periods", []):
            match = [d for d in p.get("drift", []) if d.get("feature") == feature]
            pv = match[0].get("p_value") if match else None
            row.append(-math.log10(max(pv, 1e-12)) if pv is not None else None)
            row_text.append(f"{feature} {p['period']}: p={_num(pv, 4)}" + (" DRIFT" if match and match[0].get("drift") else ""))
        z.append(row)
        text.append(row_text)
    fig = go.Figure(go.Heatmap(z=z, x=periods, y=features, text=text, hoverinfo="text", colorscale="YlOrRd",
                               colorbar={"title": "-log10 p"}))
    fig.update_layout(title="Feature drift per period (-log10 p-value of the per-feature test)",
                      height=max(260, 40 * len(features) + 120), margin={"t": 50, "b": 40}, xaxis={"type": "category"})
    return fig


def _rollout_figure(rollout: dict[str, Any]) -> Any:
    """The rollout chart (:mod:`serving.canary.chart`), drawn from the controller's check results of each step."""
    from serving.canary.chart import rollout_figure

    fig = rollout_figure(rollout, height_per_panel=200)
    fig.update_layout(title=f"Canary v{rollout.get('from_version')} -> v{rollout.get('to_version')}: {rollout.get('outcome', '')} "
                            f"({rollout.get('reason', '')})", margin={"t": 60, "b": 40})
    return fig


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_dashboard(summary: dict[str, Any]) -> str:
    """Render the dashboard HTML for a demo ``summary`` (the dict written to summary.json)."""
    import plotly.offline

    figures = []
    if summary.get("periods"):
        figures.append(("Performance", _metrics_figure(summary)))
        if any(p.get("drift") for p in summary["periods"]):
            figures.append(("Drift", _drift_figure(summary)))
    for i, rollout in enumerate(summary.get("rollouts", [])):
        figures.append((f"Rollout {i + 1}", _rollout_figure(rollout)))

    rollouts = summary.get("rollouts", [])
    cards = [
        ("periods replayed", len(summary.get("periods", []))),
        ("retrain decisions", sum(1 for e in summary.get("events", []) if e.get("action") == "retrain")),
        ("promoted", sum(1 for r in rollouts if r.get("outcome") == "promoted")),
        ("rolled back", sum(1 for r in rollouts if r.get("outcome") == "rolled_back")),
    ]
    event_rows = [
        [_esc(e.get("period")), _esc(e.get("action")), _esc(e.get("strategy") or ""),
         "<br>".join(_esc(r) for r in e.get("reasons", []))]
        for e in summary.get("events", [])
    ]
    rollout_sections = []
    for i, r in enumerate(rollouts):
        step_rows = [
            [_esc(s.get("percent")), _esc(s.get("decision")), "<br>".join(_esc(x) for x in s.get("reasons", []))]
            for s in r.get("steps", [])
        ]
        rollout_sections.append(
            f"<h3 class='{_esc(r.get('outcome'))}'>Rollout {i + 1}: v{_esc(r.get('from_version'))} -> "
            f"v{_esc(r.get('to_version'))}: {_esc(r.get('outcome'))}</h3><p>{_esc(r.get('reason', ''))}</p>"
            + _table(step_rows, ["traffic %", "decision", "reasons"])
        )
    figure_html = "".join(
        f"<section><h2>{_esc(title)}</h2>{fig.to_html(full_html=False, include_plotlyjs=False)}</section>"
        for title, fig in figures
    )
    plotly_js = plotly.offline.get_plotlyjs() if figures else ""
    summary_json = _esc(json.dumps({k: summary.get(k) for k in ("scenario", "duration_s", "final_champion")}, default=str))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>driftloop demo: {_esc(summary.get('scenario'))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1200px; }}
.cards {{ display: flex; gap: 1rem; }} .card {{ border: 1px solid #ddd; border-radius: 8px; padding: .8rem 1.2rem; }}
.card b {{ font-size: 1.6rem; display: block; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; }} td, th {{ border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
.promoted {{ color: #27ae60; }} .rolled_back {{ color: #c0392b; }}
</style>
<script type="text/javascript">{plotly_js}</script>
</head><body>
<h1>driftloop demo: {_esc(summary.get('scenario'))}</h1>
<p data-summary="{summary_json}">Final champion: v{_esc(summary.get('final_champion', '?'))}. Duration: {_num(summary.get('duration_s'), 1)} s.</p>
<div class="cards">{''.join(f'<div class="card"><b>{v}</b>{_esc(k)}</div>' for k, v in cards)}</div>
<h2>Decisions</h2>
{_table(event_rows, ["period", "action", "strategy", "reasons"]) if event_rows else "<p>No monitor fired.</p>"}
<h2>Rollouts</h2>
{''.join(rollout_sections) if rollout_sections else "<p>No rollout.</p>"}
{figure_html}
</body></html>
"""


def write_dashboard(summary: dict[str, Any], path: Path) -> Path:
    """Render and write the dashboard; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_dashboard(summary), encoding="utf-8")
    return path

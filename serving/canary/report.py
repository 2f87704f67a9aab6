"""A rollout's story as one self-contained HTML page (plotly, JavaScript inlined).

Top: the challenger's traffic share at each analysis with the decision; below: each
check's value against its threshold, step by step.

>>> from serving.canary.controller import RolloutResult
>>> r = RolloutResult("rolled_back", "error_rate 0.2 > 0.01", "1", "2", steps=[{"percent": 10, "decision": "rollback",
...     "analysed_at": "2026-01-01T00:00:30+00:00", "reasons": ["error_rate 0.2 > 0.01"],
...     "checks": [{"metric": "error_rate", "value": 0.2, "threshold": 0.01, "passed": False}]}])
>>> html = rollout_html(r)
>>> html.startswith("<html>") and "error_rate" in html and '<script src="http' not in html
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def rollout_figure(result: Any) -> Any:
    """A plotly Figure: traffic share per step, then one panel per check metric."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    steps = result.steps
    metrics = list(dict.fromkeys(c["metric"] for s in steps for c in s["checks"]))
    fig = make_subplots(rows=1 + len(metrics), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=["challenger traffic %", *metrics])
    x = list(range(1, len(steps) + 1))
    colour = {"advance": "#2a9d8f", "promote": "#264653", "hold": "#e9c46a", "rollback": "#e76f51"}
    fig.add_trace(go.Scatter(x=x, y=[s["percent"] for s in steps], mode="lines+markers", line_shape="hv", name="traffic %",
                             marker={"size": 12, "color": [colour.get(s["decision"], "grey") for s in steps]},
                             text=[f"{s['decision']}: {'; '.join(s['reasons'][:2])}" for s in steps], hoverinfo="text+y"), row=1, col=1)
    for row, metric in enumerate(metrics, start=2):
        pts = [(i, c) for i, s in zip(x, steps, strict=True) for c in s["checks"] if c["metric"] == metric]
        fig.add_trace(go.Scatter(x=[i for i, _ in pts], y=[c["value"] for _, c in pts], mode="lines+markers", name=metric,
                                 marker={"color": ["#e76f51" if c["passed"] is False else "#2a9d8f" for _, c in pts]}), row=row, col=1)
        fig.add_trace(go.Scatter(x=[i for i, _ in pts], y=[c["threshold"] for _, c in pts], mode="lines", name=f"{metric} limit",
                                 line={"dash": "dash", "color": "grey"}), row=row, col=1)
    fig.update_layout(title=f"{result.outcome.replace('_', ' ')}: {result.reason} (champion v{result.champion_version}, challenger v{result.challenger_version})",
                      height=260 * (1 + len(metrics)), showlegend=False, template="plotly_white")
    fig.update_xaxes(dtick=1)
    fig.update_xaxes(title_text="analysis step", row=1 + len(metrics), col=1)
    return fig


def rollout_html(result: Any) -> str:
    """The figure as a standalone HTML document (no CDN)."""
    return str(rollout_figure(result).to_html(include_plotlyjs=True, full_html=True))


def write_rollout_report(result: Any, path: str | Path) -> Path:
    """Write :func:`rollout_html` to ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(rollout_html(result))
    return out

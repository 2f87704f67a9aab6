"""The rollout chart: a rollout's story drawn from the controller's own check results.

Top: the challenger's traffic share at each analysis with the decision; below: each
check's value against its threshold, step by step, exactly as
:func:`serving.canary.analysis.analyse_step` judged it (``RolloutResult.steps[i]["checks"]``).
``driftloop rollout --report``, the demo dashboard and the tests all draw this one chart;
it takes a :class:`~serving.canary.controller.RolloutResult` or its ``to_dict()``.

>>> from serving.canary.controller import RolloutResult
>>> r = RolloutResult("rolled_back", "error_rate 0.2 > 0.01", "1", "2", steps=[{"percent": 10, "decision": "rollback",
...     "analysed_at": "2026-01-01T00:00:30+00:00", "reasons": ["error_rate 0.2 > 0.01"],
...     "checks": [{"metric": "error_rate", "value": 0.2, "threshold": 0.01, "passed": False}]}])
>>> html = rollout_html(r)
>>> html.startswith("<html>") and "error_rate" in html and '<script src="http' not in html
True
>>> len(rollout_figure(r.to_dict()).data)  # from the saved JSON too: traffic, then value and limit per check metric
3
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _get(result: Any, name: str) -> Any:
    return result.get(name) if isinstance(result, dict) else getattr(result, name)


def rollout_figure(result: Any, height_per_panel: int = 260) -> Any:
    """A plotly Figure: traffic share per step, then one panel per check metric (values of no-data checks are gaps)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    steps = _get(result, "steps") or []
    metrics = list(dict.fromkeys(c["metric"] for s in steps for c in s.get("checks", [])))
    fig = make_subplots(rows=1 + len(metrics), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=["challenger traffic %", *metrics])
    x = list(range(1, len(steps) + 1))
    colour = {"advance": "#2a9d8f", "promote": "#264653", "hold": "#e9c46a", "rollback": "#e76f51"}
    fig.add_trace(go.Scatter(x=x, y=[s["percent"] for s in steps], mode="lines+markers", line_shape="hv", name="traffic %",
                             marker={"size": 12, "color": [colour.get(s["decision"], "grey") for s in steps]},
                             text=[f"{s['decision']}: {'; '.join(s['reasons'][:2])}" for s in steps], hoverinfo="text+y"), row=1, col=1)
    for row, metric in enumerate(metrics, start=2):
        pts = [(i, c) for i, s in zip(x, steps, strict=True) for c in s.get("checks", []) if c["metric"] == metric]
        fig.add_trace(go.Scatter(x=[i for i, _ in pts], y=[c["value"] for _, c in pts], mode="lines+markers", name=metric,
                                 marker={"color": ["#e76f51" if c["passed"] is False else "#2a9d8f" for _, c in pts]}), row=row, col=1)
        fig.add_trace(go.Scatter(x=[i for i, _ in pts], y=[c["threshold"] for _, c in pts], mode="lines", name=f"{metric} limit",
                                 line={"dash": "dash", "color": "grey"}), row=row, col=1)
    outcome = str(_get(result, "outcome") or "").replace("_", " ")
    fig.update_layout(title=f"{outcome}: {_get(result, 'reason')} (champion v{_get(result, 'champion_version')}, challenger v{_get(result, 'challenger_version')})",
                      height=height_per_panel * (1 + len(metrics)), showlegend=False, template="plotly_white")
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

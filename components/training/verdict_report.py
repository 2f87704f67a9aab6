"""The gate's verdict rendered for people: a self-contained HTML page (metrics per segment, side by side) and Markdown.

>>> from components.training.evaluate import Verdict
>>> m = {"overall": {"auc": 0.8, "accuracy": 0.7, "n": 10}, "segments": {"a": {"auc": 0.7, "accuracy": 0.6, "n": 5}}}
>>> page = verdict_html(Verdict(True, ("overall auc: ok",), "auc", m, m), title="demo", include_plotlyjs=False)
>>> "overall auc: ok" in page and "PASSED" in page
True
"""

from __future__ import annotations

import html
import math
from typing import Any

_PLOTTED = ("auc", "gini", "accuracy", "log_loss", "calibration_error")


def verdict_html(verdict: Any, title: str = "driftloop verdict", include_plotlyjs: bool = True) -> str:
    """One page: the gate's reasons and one grouped bar chart per metric (overall + segments)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    groups = ["overall", *verdict.challenger["segments"]]
    metrics = [m for m in _PLOTTED if _finite(verdict.challenger["overall"].get(m))]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[m + (" (gate)" if m == verdict.metric else "") for m in metrics])
    arms = [("challenger", verdict.challenger, "#1f77b4")] + ([("champion", verdict.champion, "#ff7f0e")] if verdict.champion else [])
    for col, metric in enumerate(metrics, start=1):
        for name, values, color in arms:
            ys = [_value(values, g, metric) for g in groups]
            fig.add_trace(go.Bar(name=name, x=groups, y=ys, marker_color=color, showlegend=col == 1, legendgroup=name), row=1, col=col)
    fig.update_layout(barmode="group", height=420, margin={"t": 60, "l": 40, "r": 20, "b": 40})
    chart = fig.to_html(full_html=False, include_plotlyjs="inline" if include_plotlyjs else False)
    status = "PASSED" if verdict.passed else "FAILED"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in verdict.reasons)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body style='font-family:sans-serif;margin:2em'><h1>{html.escape(title)}</h1>"
        f"<p>Gate on <b>{html.escape(verdict.metric)}</b>: <b style='color:{'green' if verdict.passed else 'crimson'}'>{status}</b></p>"
        f"<ul>{reasons}</ul>{chart}</body></html>"
    )


def _value(values: dict[str, Any], group: str, metric: str) -> float | None:
    source = values["overall"] if group == "overall" else values["segments"].get(group, {})
    v = source.get(metric)
    return float(v) if _finite(v) else None


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def verdict_markdown(verdict: Any) -> str:
    """The gate's verdict as Markdown (the KFP dashboard's verdict panel).

    >>> from components.training.evaluate import Verdict
    >>> print(verdict_markdown(Verdict(False, ("overall auc: 0.70 < 0.75",), "auc", {"overall": {}, "segments": {}})), end="")
    # Gate on auc: FAILED
    <BLANKLINE>
    - overall auc: 0.70 < 0.75
    """
    head = f"# Gate on {verdict.metric}: {'PASSED' if verdict.passed else 'FAILED'}"
    return "\n".join([head, "", *(f"- {r}" for r in verdict.reasons)]) + "\n"

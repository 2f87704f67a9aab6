"""A one-page picture of a scenario: per period, the label rate (per segment) and feature means, onset marked.

>>> from components.data.scenarios import generate, get_spec
>>> html = scenario_html(generate("churn", rows=480), get_spec("churn"), include_plotlyjs=False)
>>> "churned rate" in html and "onset" in html
True
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from components.data.spec import ScenarioSpec

_FLOOR = {"month": "MS", "day": "D", "hour": "h"}


def period_summary(df: pd.DataFrame, spec: ScenarioSpec) -> pd.DataFrame:
    """Per period: rows, label rate overall and per segment, and the mean of each numeric feature.

    >>> from components.data.scenarios import generate, get_spec
    >>> s = period_summary(generate("credit", rows=2400), get_spec("credit"))
    >>> list(s.columns[:4])
    ['rows', 'defaulted rate', 'defaulted rate: prime', 'defaulted rate: subprime']
    """
    ts = df[spec.timestamp]
    period = ts.dt.tz_localize(None).dt.to_period("M").dt.start_time if spec.period == "month" else ts.dt.floor(_FLOOR[spec.period]).dt.tz_localize(None)
    g = df.groupby(period)
    out = pd.DataFrame({"rows": g.size(), f"{spec.label} rate": g[spec.label].mean()})
    if spec.segment:
        rates = df.groupby([period, df[spec.segment]])[spec.label].mean().unstack()
        out = out.join(rates.add_prefix(f"{spec.label} rate: "))
    return out.join(g[list(spec.features)].mean())


def scenario_html(df: pd.DataFrame, spec: ScenarioSpec, include_plotlyjs: bool = True) -> str:
    """Self-contained HTML (plotly JS inlined) with label rates and feature means per period."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    summary = period_summary(df, spec)
    rate_cols = [c for c in summary.columns if c.startswith(f"{spec.label} rate")]
    feats = list(spec.features)
    fig = make_subplots(rows=1 + len(feats), cols=1, shared_xaxes=True, vertical_spacing=0.03, subplot_titles=["label rate", *[f"mean {f}" for f in feats]])
    for col in rate_cols:
        fig.add_trace(go.Scatter(x=summary.index, y=summary[col], name=col, mode="lines"), row=1, col=1)
    for i, f in enumerate(feats, start=2):
        fig.add_trace(go.Scatter(x=summary.index, y=summary[f], name=f, mode="lines", showlegend=False), row=i, col=1)
    for onset, label in ((spec.onset, "onset"), (spec.onset2, "onset 2")):
        if onset is not None:
            fig.add_vline(x=onset.tz_localize(None).to_pydatetime().timestamp() * 1000, line_dash="dash", line_color="firebrick", annotation_text=label)
    onset = f"{spec.onset:%Y-%m-%d %H:%M}" + (f" and {spec.onset2:%Y-%m-%d}" if spec.onset2 is not None else "")
    fig.update_layout(title=f"{spec.name}: per {spec.period}, drift onset {onset} UTC", height=220 * (1 + len(feats)), template="plotly_white")
    return fig.to_html(include_plotlyjs=include_plotlyjs, full_html=True)


def write_scenario_plot(df: pd.DataFrame, spec: ScenarioSpec, path: str | Path) -> Path:
    """Write :func:`scenario_html` to ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(scenario_html(df, spec), encoding="utf-8")
    return out

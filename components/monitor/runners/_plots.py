"""Reference vs current distributions as shares on shared bins, for the HTML report's plots."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

HIST_BINS = 20
MAX_CATEGORIES = 30


def distribution(ref: pd.Series, cur: pd.Series, categorical: bool) -> dict[str, Any]:
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

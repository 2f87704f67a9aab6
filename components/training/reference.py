"""What a registered version carries for later drift tests: a reference sample and a profile.

The reference sample is a seeded sample of holdout rows with the model's prediction and
the label (the monitor compares live traffic with it). The profile is a per-feature
summary (numeric quantiles, category frequencies) small enough to read in the MLflow UI.

>>> import pandas as pd
>>> from components.policy import policy_from_dict
>>> policy = policy_from_dict({"model": "m", "entity": "id", "label": "y", "features": ["x"],
...     "categorical_features": ["c"],
...     "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.8}]})
>>> frame = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "c": ["a", "a", "b", None], "y": [0, 1, 0, 1]})
>>> p = profile(policy, frame)
>>> p["x"]["missing"], p["x"]["median"], p["c"]["top"]
(1, 2.0, {'a': 0.5, 'b': 0.25, None: 0.25})
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from components.policy import Policy


def build_reference_sample(policy: Policy, model: Any, frame: pd.DataFrame, max_rows: int = 5000, seed: int = 0) -> pd.DataFrame:
    """Up to ``max_rows`` seeded rows of ``frame`` with ``policy.prediction`` = P(label = 1), time-ordered."""
    rows = frame.sample(n=max_rows, random_state=seed).sort_index() if len(frame) > max_rows else frame
    keep = [c for c in dict.fromkeys([policy.entity, policy.timestamp, *policy.all_features, policy.segment_column, policy.label]) if c and c in rows.columns]
    sample = rows[keep].reset_index(drop=True)
    sample[policy.prediction] = np.asarray(model.predict(rows[policy.all_features]), dtype=float)
    return sample


def profile(policy: Policy, frame: pd.DataFrame, top: int = 20) -> dict[str, dict[str, Any]]:
    """Per-feature summary: count, missing and quantiles (numeric) or top frequencies (categorical)."""
    out: dict[str, dict[str, Any]] = {}
    for column in policy.features:
        values = pd.to_numeric(frame[column], errors="coerce")
        present = values.dropna()
        stats: dict[str, Any] = {"type": "numeric", "count": int(len(values)), "missing": int(values.isna().sum())}
        if len(present):
            q = present.quantile([0.05, 0.5, 0.95])
            stats.update(mean=float(present.mean()), std=float(present.std(ddof=0)), min=float(present.min()), p05=float(q[0.05]), median=float(q[0.5]), p95=float(q[0.95]), max=float(present.max()))
        out[column] = stats
    for column in policy.categorical_features:
        values = frame[column]
        freq = values.astype(object).where(values.notna(), None).value_counts(normalize=True, dropna=False).head(top)
        out[column] = {
            "type": "categorical",
            "count": int(len(values)),
            "missing": int(values.isna().sum()),
            "distinct": int(values.nunique()),
            "top": {(None if pd.isna(k) else str(k)): round(float(v), 6) for k, v in freq.items()},
        }
    return out

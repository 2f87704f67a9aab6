"""One way to turn results (dataclasses of numpy scalars, NaN, timestamps) into plain JSON.

>>> import numpy as np, pandas as pd
>>> json_safe({"p": np.float64(0.5), "nan": float("nan"), "at": pd.Timestamp("2025-07-01", tz="UTC"), "xs": (1, 2)})
{'p': 0.5, 'nan': None, 'at': '2025-07-01T00:00:00+00:00', 'xs': [1, 2]}
"""

from __future__ import annotations

import math
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf as ``None``, numpy scalars as Python numbers, datetimes as ISO text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return json_safe(value.item())
    if hasattr(value, "isoformat"):  # datetimes and pandas timestamps
        return value.isoformat()
    return value

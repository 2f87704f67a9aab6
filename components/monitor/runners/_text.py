"""Number formatting shared by the monitor runners' one-line summaries."""

from __future__ import annotations

import numpy as np


def fmt_value(x: float | None) -> str:
    """A number to three significant digits, ``n/a`` when missing or not finite."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def fmt_p(p: float | None) -> str:
    """A p-value with its relation sign: ``=0.031``, ``=2.6e-25``, ``<1e-300`` (underflow)."""
    if p is None:
        return "=n/a"
    if p == 0:
        return "<1e-300"
    return f"={p:.1e}" if p < 1e-3 else f"={p:.3f}"

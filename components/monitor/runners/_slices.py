"""Where a model fails: rank slices of the labelled rows by their share of the errors."""

from __future__ import annotations

from typing import Any

import pandas as pd

from components.monitor.context import PRED_LABEL, MonitorContext


def rank_error_slices(ctx: MonitorContext, cur: pd.DataFrame, ref: pd.DataFrame, slice_by: list[str]) -> list[dict[str, Any]]:
    """The slices of ``cur`` (vs ``ref``) that hold most of the errors (``slicing.rank_slices``)."""
    from components.monitor.slicing import rank_slices

    if len(cur) == 0:
        return []
    label = ctx.policy.label
    cur = cur.assign(**{label: cur[label].astype(int)})
    ref = ref.assign(**{label: ref[label].astype(int)}) if len(ref) else None
    return rank_slices(cur, label, PRED_LABEL, slice_by, baseline_df=ref)

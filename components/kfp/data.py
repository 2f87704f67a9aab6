"""KFP steps for the data: default the monitoring windows, fetch a window's rows, validate them.

No ``from __future__ import annotations`` here: KFP reads the real annotation objects.

>>> sorted(resolve_windows.component_spec.outputs)
['current_end', 'current_start', 'reference_end', 'reference_start']
>>> sorted(get_features.component_spec.outputs)
['data']
>>> validate_data.component_spec.implementation.container.image == IMAGE
True
"""

from typing import NamedTuple

from kfp.dsl import Dataset, Input, Metrics, Output

from components.kfp import IMAGE, component

__all__ = ["IMAGE", "get_features", "resolve_windows", "validate_data"]


@component
def get_features(policy: str, start: str, end: str, source: str, cohort: str, workdir: str, data: Output[Dataset]):
    """Point-in-time rows for ``[start, end)``: Feast by default, or a parquet / ``scenario:`` source."""
    from components.kfp import runtime
    from components.windows import rows_for

    frame = rows_for(runtime.resolve_policy(policy), start, end, source, cohort, runtime.settings_for(workdir))
    runtime.write_frame(frame, data.path)
    data.metadata.update({"rows": len(frame), "start": start, "end": end, "source": source or "feast"})


@component
def validate_data(policy: str, data: Input[Dataset], min_rows: int, need_label: bool, metrics: Output[Metrics]) -> int:
    """Fail the run early with a named column / row-count problem; log the window's figures."""
    from components.kfp import runtime
    from components.windows import validate_frame

    figures = validate_frame(runtime.read_frame(data.path), runtime.resolve_policy(policy), min_rows=min_rows, need_label=need_label)
    for name, value in figures.items():
        metrics.log_metric(name, value)
    return int(figures["rows"])


@component
def resolve_windows(policy: str, source: str, current_start: str, current_end: str, reference_start: str, reference_end: str) -> NamedTuple(  # type: ignore[valid-type]
        "Windows", [("current_start", str), ("current_end", str), ("reference_start", str), ("reference_end", str)]):
    """Fill empty monitoring-window bounds: the current window is the latest policy period, the reference the ten periods before it."""
    from collections import namedtuple

    from components.kfp import runtime
    from components.windows import monitoring_windows

    pol = runtime.resolve_policy(policy)
    w = runtime.with_default_reference(pol, monitoring_windows(pol, source, current_start, current_end, reference_start, reference_end))
    return namedtuple("Windows", list(w))(**w)

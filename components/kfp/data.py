"""KFP components for the data steps: feature retrieval and data validation.

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
    from components.kfp import runtime, windows

    pol = runtime.resolve_policy(policy)
    if source:
        frame = windows.select_window(windows.read_source(source, pol), pol, start, end)
        if cohort:
            column = pol.segment_column or ""
            frame = frame[frame[column].astype(str) == cohort] if column in frame else frame
    else:
        from components.features import training_set

        frame = training_set(pol, runtime.parse_time(start, "start"), runtime.parse_time(end, "end"), cohort=cohort or None, settings=runtime.settings_for(workdir))
    runtime.write_frame(frame, data.path)
    data.metadata.update({"rows": len(frame), "start": start, "end": end, "source": source or "feast"})


@component
def validate_data(policy: str, data: Input[Dataset], min_rows: int, need_label: bool, metrics: Output[Metrics]) -> int:
    """Fail the run early with a named column / row-count problem; log the window's figures."""
    from components.kfp import runtime, windows

    figures = windows.validate_frame(runtime.read_frame(data.path), runtime.resolve_policy(policy), min_rows=min_rows, need_label=need_label)
    for name, value in figures.items():
        metrics.log_metric(name, value)
    return int(figures["rows"])


@component
def resolve_windows(policy: str, source: str, current_start: str, current_end: str, reference_start: str, reference_end: str) -> NamedTuple(  # type: ignore[valid-type]
        "Windows", [("current_start", str), ("current_end", str), ("reference_start", str), ("reference_end", str)]):
    """Fill empty window bounds: the current window is the latest policy period, the reference all before it."""
    from collections import namedtuple

    from components.kfp import runtime, windows

    pol = runtime.resolve_policy(policy)
    w = windows.resolve_windows(pol, windows.latest_timestamp(pol, source), current_start, current_end, reference_start, reference_end)
    return namedtuple("Windows", list(w))(**w)

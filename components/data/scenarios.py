"""The seed scenarios: a registry of specs and one entry point to generate or write their data.

Every scenario's columns match its policy (``policies/<name>.yaml``); every row also has a
``label_timestamp``, when its label becomes known. Generation is vectorised and
deterministic for a seed.

>>> sorted(SCENARIOS)
['churn', 'concept', 'credit', 'fraud', 'recsys']
>>> df = generate("fraud", rows=1000, seed=1)
>>> len(df), df["event_timestamp"].is_monotonic_increasing
(1000, True)
>>> generate("fraud", rows=1000, seed=1).equals(df)
True
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from components.data import churn, concept, credit, fraud, recsys
from components.data.spec import ScenarioSpec
from components.errors import DataError

_MODULES: dict[str, ModuleType] = {m.SPEC.name: m for m in (churn, credit, fraud, recsys, concept)}
SCENARIOS: dict[str, ScenarioSpec] = {name: m.SPEC for name, m in _MODULES.items()}


def get_spec(name: str) -> ScenarioSpec:
    """The spec of scenario ``name``; an unknown name raises :class:`DataError` listing the known ones.

    >>> get_spec("churn").onset.isoformat()
    '2025-07-01T00:00:00+00:00'
    """
    if name not in SCENARIOS:
        raise DataError(f"unknown scenario {name!r}", fix=f"use one of: {', '.join(sorted(SCENARIOS))}")
    return SCENARIOS[name]


def generate(name: str, rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Generate scenario ``name``: about ``rows`` rows (default ``spec.default_rows``), sorted by time.

    churn observes each customer every month, so its row count is rounded down to whole
    months. Timestamps are UTC; categoricals are strings; the label is 0/1 int64.
    """
    spec = get_spec(name)
    n = spec.default_rows if rows is None else rows
    if not isinstance(n, int | np.integer) or n <= 0:
        raise DataError(f"rows must be a positive integer, got {rows!r}", fix="pass e.g. rows=10000")
    build: Callable[[ScenarioSpec, int, np.random.Generator], pd.DataFrame] = _MODULES[name].build
    df = build(spec, int(n), np.random.default_rng(seed))
    df = df.sort_values([spec.timestamp, spec.entity], kind="stable", ignore_index=True)
    return df[spec.columns]


def write_scenario(name: str, out_dir: str | Path, rows: int | None = None, seed: int = 0) -> Path:
    """Generate scenario ``name`` and write it to ``out_dir/<name>.parquet``; return the path.

    >>> import tempfile
    >>> path = write_scenario("concept", tempfile.mkdtemp(), rows=200)
    >>> path.name, len(pd.read_parquet(path))
    ('concept.parquet', 200)
    """
    df = generate(name, rows=rows, seed=seed)
    out = Path(out_dir)
    path = out / f"{name}.parquet"
    try:
        out.mkdir(parents=True, exist_ok=True)
        df.to_parquet(path, index=False)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}", fix="choose a writable --out directory") from None
    return path

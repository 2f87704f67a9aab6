"""Compile pipelines to KFP IR YAML (committed under ``pipelines/compiled/`` for GitOps).

>>> import tempfile
>>> out = compile_all(tempfile.mkdtemp(), names=["monitor"])
>>> [p.name for p in out]
['monitor.yaml']
>>> "driftloop-monitor" in out[0].read_text()
True
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from components.errors import ConfigError
from pipelines import PIPELINES
from pipelines.platform import check_target

COMPILED_DIR = Path(__file__).resolve().parent / "compiled"


def build_pipeline(name: str, target: str = "cluster") -> Any:
    """The pipeline function called ``name`` built for ``target``."""
    if name not in PIPELINES:
        raise ConfigError(f"unknown pipeline {name!r}", fix=f"use one of {', '.join(sorted(PIPELINES))}")
    return importlib.import_module(PIPELINES[name]).build(check_target(target))


def compile_pipeline(name: str, path: str | Path, target: str = "cluster") -> Path:
    """Compile one pipeline to ``path`` and return it."""
    from kfp import compiler

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func=build_pipeline(name, target), package_path=str(path))
    return path


def compile_all(out_dir: str | Path, target: str = "cluster", names: Iterable[str] | None = None) -> list[Path]:
    """Compile every pipeline (or ``names``) to ``out_dir/<name>.yaml``."""
    out = Path(out_dir)
    return [compile_pipeline(name, out / f"{name}.yaml", target) for name in (names or sorted(PIPELINES))]

"""Run whole pipelines on this machine with ``kfp.local.SubprocessRunner(use_venv=False)``.

Each task runs in a subprocess of this interpreter, so the project's packages must be
importable there: :func:`local_env` puts the repository on ``PYTHONPATH`` for the run. The
work directory (MLflow store, decision ledger) is passed to every task as the ``workdir``
parameter, so all tasks share one state.

>>> sorted(local_arguments("monitor", "model: x", Path("/tmp/w"), "scenario:churn", {"current_end": "2025-09-01"}))
['current_end', 'policy', 'source', 'workdir']
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.errors import DriftloopError
from components.settings import REPO_ROOT

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # kfp.local colours task names in its messages


@dataclass
class LocalRun:
    """The outcome of one local pipeline run."""

    pipeline: str
    state: str
    seconds: float
    pipeline_root: Path
    run_dir: Path
    outputs: dict[str, Any] = field(default_factory=dict)

    def artifacts(self, pattern: str = "*") -> list[Path]:
        """Files this run's tasks wrote (one directory per task), matching ``pattern``."""
        return sorted(p for p in self.run_dir.rglob(pattern) if p.is_file())

    def task_dirs(self) -> list[str]:
        """Names of the tasks that wrote outputs (one directory each)."""
        return sorted({p.parent.name for p in self.artifacts()})

    def summary(self) -> list[str]:
        """One line per pipeline output and per artifact file, for the CLI."""
        lines = [f"{k} = {v}" for k, v in self.outputs.items()]
        return lines + [str(p.relative_to(self.pipeline_root)) for p in self.artifacts()]


def local_arguments(pipeline: str, policy_yaml: str, workdir: Path, source: str, params: dict[str, Any]) -> dict[str, Any]:
    """The pipeline arguments of a local run: policy, work directory, data source, overrides.

    Only the parameters the pipeline declares are passed (``materialize_and_check`` checks a
    feature view and takes no policy).
    """
    import importlib

    from pipelines import PIPELINES

    declared = set(importlib.import_module(PIPELINES[pipeline]).build("local").component_spec.inputs or {}) if pipeline in PIPELINES else None
    args: dict[str, Any] = {"workdir": str(Path(workdir).resolve())}
    if declared is None or "policy" in declared:
        args["policy"] = policy_yaml
    if source:
        args["source"] = source
    args.update(params)
    return args


@contextlib.contextmanager
def local_env(workdir: Path) -> Iterator[None]:
    """Make the project importable in task subprocesses and point them at ``workdir``."""
    from components.kfp.runtime import settings_for

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "DRIFTLOOP_WORKDIR", "MLFLOW_TRACKING_URI")}
    paths = [str(REPO_ROOT), *(p for p in (saved["PYTHONPATH"] or "").split(os.pathsep) if p)]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    os.environ["DRIFTLOOP_WORKDIR"] = str(Path(workdir).resolve())
    # MLflow's own default store too, so library code that relies on it finds the same one.
    os.environ["MLFLOW_TRACKING_URI"] = settings_for(str(workdir)).mlflow_tracking_uri
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def init_local(pipeline_root: Path) -> None:
    """Initialise kfp.local with the subprocess runner on this interpreter (no venv, no pip)."""
    from kfp import local

    pipeline_root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root), raise_on_error=True)


def run_pipeline(pipeline: str, policy_yaml: str, workdir: Path, source: str = "", params: dict[str, Any] | None = None,
                 progress: bool = False, pipeline_root: Path | None = None) -> LocalRun:
    """Run ``pipeline`` (built for the local target) end to end; a failed task raises DriftloopError."""
    from pipelines.compile import build_pipeline

    workdir = Path(workdir).resolve()
    root = (pipeline_root or workdir / "kfp-local").resolve()
    func = build_pipeline(pipeline, target="local")
    init_local(root)
    args = local_arguments(pipeline, policy_yaml, workdir, source, params or {})
    before = set(root.iterdir())
    started = time.perf_counter()
    with local_env(workdir), quiet_local_warnings(), _spinner(progress, f"running pipeline {pipeline} locally"):
        try:
            task = func(**args)
        except RuntimeError as exc:
            raise DriftloopError(f"local pipeline {pipeline!r} failed: {_ANSI.sub('', str(exc))}", fix=f"read the failing task's log above; outputs are under {root}") from None
    seconds = time.perf_counter() - started
    # kfp.local writes each run under <root>/<pipeline name>-<timestamp>/<task>/.
    run_dir = max(set(root.iterdir()) - before, key=lambda p: p.stat().st_mtime, default=root)
    outputs = dict(task.outputs) if getattr(task, "outputs", None) else {}
    return LocalRun(pipeline, "SUCCEEDED", seconds, root, run_dir, {k: v for k, v in outputs.items() if isinstance(v, str | int | float | bool)})


@contextlib.contextmanager
def quiet_local_warnings() -> Iterator[None]:
    """Silence kfp.local's per-task warnings that do not apply to this project's runs."""
    with warnings.catch_warnings():
        # The project image name has no "python" in it; the subprocess runner uses this venv anyway.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        # Display names and cluster settings matter on Kubeflow only.
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
        yield


@contextlib.contextmanager
def _spinner(enabled: bool, text: str) -> Iterator[None]:
    if not enabled:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(text):
        yield

"""Running the demo from a terminal: progress on screen, library output in log files.

:func:`run_demo` is what ``driftloop demo`` calls: it runs a :class:`~driftloop.demo.loop.Demo`
and writes ``summary.json`` and the dashboard (``report.html``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def captured_output(path: Path) -> Iterator[None]:
    """Send this process's (and its children's) stdout and stderr to ``path`` for the block.

    kfp.local streams every task's executor input and logs to the terminal; the demo keeps
    them in a log file and shows progress instead. The terminal gets them back on error.

    >>> import tempfile
    >>> log = Path(tempfile.mkdtemp()) / "out.log"
    >>> with captured_output(log):
    ...     _ = os.write(1, b"a child's output")
    >>> log.read_text()
    "a child's output"
    """
    import sys

    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_demo(scenario: str, workdir: Path, bad_challenger: bool = False, seed: int = 0, quiet: bool = False) -> dict[str, Any]:
    """Run the demo and write ``summary.json`` and ``report.html`` into ``workdir``; return the summary."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from driftloop.dashboard import write_dashboard
    from driftloop.demo.loop import Demo

    # rich writes to a duplicate of the terminal, so it keeps drawing while pipeline output is captured
    console = Console(file=os.fdopen(os.dup(2), "w", buffering=1), quiet=quiet, force_terminal=None)
    workdir.mkdir(parents=True, exist_ok=True)
    quiet_libraries()
    # library chatter (Feast, MLflow, kfp.local task logs) goes to logs/demo.log; the
    # terminal shows the phases, one line per period and per canary step
    with captured_output(workdir / "logs" / "demo.log"), \
            Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                     transient=False) as progress:
        demo = Demo(scenario, workdir, bad_challenger=bad_challenger, seed=seed, say=progress.console.print, progress=progress)
        summary = demo.run()
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_dashboard(summary, workdir / "report.html")
    return summary


def quiet_libraries() -> None:
    """Only errors from the libraries the demo drives; warnings off."""
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("mlflow", "alembic", "feast", "kfp", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

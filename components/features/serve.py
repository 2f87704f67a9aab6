"""Run Feast's feature server (``feast serve``) over this pod's rendered production repo.

The production template names the offline store by URL, which Feast cannot read, so the
server of ``manifests/base/feast.yaml`` starts through here: render the repo from the same
``DRIFTLOOP_FEAST_*`` variables every other pod reads, then hand over to ``feast serve``.
The server reads only the registry and the online store, so the offline URL may be unset.

``python -m components.features.serve [--dry-run] [feast serve options]``
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from components.errors import DriftloopError
from components.features.config import render_repo
from components.settings import Settings


def serve_command(settings: Settings, serve_args: Sequence[str] = ()) -> list[str]:
    """Render the repo of ``settings`` (online only) and return the ``feast serve`` command for it.

    >>> import tempfile
    >>> from pathlib import Path
    >>> work = Path(tempfile.mkdtemp())
    >>> cmd = serve_command(Settings(workdir=work), ["--port", "6566"])
    >>> cmd[:2], cmd[3:] == ["serve", "--port", "6566"], cmd[2] == str(work / "feature_repo")
    (['feast', '--chdir'], True, True)
    """
    repo = render_repo(settings, offline=False)
    return ["feast", "--chdir", str(repo), "serve", *serve_args]


def main(argv: Sequence[str] | None = None) -> int:
    """Render, then replace this process with ``feast serve`` (``--dry-run``: print the command)."""
    args = list(sys.argv[1:] if argv is None else argv)
    dry_run = "--dry-run" in args
    args = [a for a in args if a != "--dry-run"]
    try:
        cmd = serve_command(Settings.from_env(), args)
    except DriftloopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if dry_run:
        print(" ".join(cmd))
        return 0
    sys.stdout.flush()
    os.execvp(cmd[0], cmd)
    return 0  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main())

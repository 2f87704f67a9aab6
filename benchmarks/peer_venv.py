"""Peer tools for the benchmarks, each in its own virtualenv under ``.driftloop/bench-venvs/<name>``.

A peer (NannyML, Evidently) often needs other versions of numpy or pandas than driftloop
pins, so it runs as a script in its own venv, created on first use and reinstalled when
its package list changes (the list is kept in ``<venv>/.installed``). When the venv cannot
be had (no such Python, no network, a failed install) the caller gets ``(None, why)`` and
prints that column as skipped, with the reason.

>>> from pathlib import Path
>>> venv_path("nannyml").relative_to(Path(__file__).resolve().parent.parent).as_posix()
'.driftloop/bench-venvs/nannyml'
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def venv_path(name: str) -> Path:
    """Where the peer ``name``'s virtualenv lives."""
    return ROOT / ".driftloop" / "bench-venvs" / name


def ensure_peer_venv(venv: Path, packages: Sequence[str], python: str = "python3.11") -> tuple[Path | None, str]:
    """The peer's python, creating the venv on first use; ``(None, why)`` when it cannot be had."""
    exe = venv / "bin" / "python"
    marker = venv / ".installed"  # what was installed; a changed package list reinstalls
    wanted = " ".join(packages) + "\n"
    if exe.exists() and marker.exists() and marker.read_text() == wanted:
        return exe, ""
    try:
        if not exe.exists():
            print(f"  creating the peer venv {venv} ({python} -m venv) ...", flush=True)
            subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True, text=True, timeout=300)
        print(f"  installing {', '.join(packages)} into it (first use only; a few minutes) ...", flush=True)
        subprocess.run([str(exe), "-m", "pip", "install", "-q", *packages], check=True, capture_output=True, text=True, timeout=1800)
    except FileNotFoundError:
        return None, f"{python} not found: install it to run the peer next to driftloop"
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        return None, f"could not set up {venv}: {' '.join(exc.cmd[:4])} ... failed: {tail[0]}"
    except subprocess.TimeoutExpired:
        return None, f"setting up {venv} took too long"
    marker.write_text(wanted)
    print("  peer venv ready", flush=True)
    return exe, ""

"""The CLI: help works without heavy imports; user errors are one line and exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from driftloop.cli import COMMANDS, main

pytestmark = pytest.mark.unit


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_help_does_not_import_tensorflow() -> None:
    code = "import sys; from driftloop.cli import main; main(['--help']); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_unknown_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "No such command" in capsys.readouterr().err

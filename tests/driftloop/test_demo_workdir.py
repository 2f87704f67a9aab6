"""``driftloop demo --workdir D`` clears D only when it is the demo's own (marker, nothing unexpected)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import driftloop.demo
from driftloop.commands.demo import MARKER, demo

SUMMARY = {"periods": [], "duration_s": 0, "requests": 0, "failed_requests": 0, "events": [], "rollouts": [], "final_champion": 1}


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    runs: list[Path] = []

    def run_demo(scenario: str, workdir: Path, **_: object) -> dict:
        runs.append(workdir)
        (workdir / "data").mkdir(exist_ok=True)
        (workdir / "summary.json").write_text("{}")
        return SUMMARY

    monkeypatch.setattr(driftloop.demo, "run_demo", run_demo)
    return runs


def _demo(workdir: Path, *extra: str):
    return CliRunner().invoke(demo, ["--workdir", str(workdir), *extra])


def test_a_directory_without_the_marker_is_never_cleared(fake_run: list[Path], tmp_path: Path) -> None:
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "summary.json").write_text("{}")  # looking like a demo is not enough
    (workdir / "thesis.tex").write_text("years of work")
    out = _demo(workdir)
    assert out.exit_code != 0 and "is not a driftloop demo directory" in str(out.exception or out.output)
    assert (workdir / "thesis.tex").read_text() == "years of work" and not fake_run


def test_the_demos_own_directory_is_cleared_and_an_unexpected_file_stops_it(fake_run: list[Path], tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    assert _demo(workdir).exit_code == 0
    assert (workdir / MARKER).exists() and (workdir / "data").is_dir()
    (workdir / "data" / "stale.parquet").write_text("old")
    assert _demo(workdir).exit_code == 0, "its own entries: cleared and run again"
    assert not (workdir / "data" / "stale.parquet").exists()
    (workdir / "notes.txt").write_text("mine")
    out = _demo(workdir)
    assert out.exit_code != 0 and (workdir / "notes.txt").read_text() == "mine"
    assert len(fake_run) == 2


def test_keep_runs_in_place_without_clearing(fake_run: list[Path], tmp_path: Path) -> None:
    workdir = tmp_path / "kept"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("mine")
    assert _demo(workdir, "--keep").exit_code == 0
    assert (workdir / "notes.txt").read_text() == "mine" and fake_run == [workdir.resolve()]

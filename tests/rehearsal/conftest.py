"""Fixtures of the cluster rehearsal: the running cluster, the compiled pipelines, the summary."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.rehearsal.summary import SUMMARY_PATH, Summary

REPO = Path(__file__).resolve().parents[2]
REHEARSAL_ROOT = REPO / ".driftloop" / "rehearsal" / "cluster"  # pod logs, object store, service logs: kept for reading after a run


@pytest.fixture(scope="module")
def summary() -> Iterator[Summary]:
    """The rehearsal's summary, written to .driftloop/rehearsal/summary.json when the module ends (cases not reached stay "not run")."""
    s = Summary(path=SUMMARY_PATH)
    try:
        yield s
    finally:
        path = s.write(SUMMARY_PATH)
        print(f"\nrehearsal summary: {path}")
        for case in s.cases.values():
            print(f"  {'PASS' if case.passed else 'FAIL'} {case.name:22s} {case.seconds:7.1f}s  {case.detail}")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Every shared service, started fresh under .driftloop/rehearsal/cluster (tests/rehearsal/cluster.py)."""
    from tests.rehearsal.cluster import running_cluster

    shutil.rmtree(REHEARSAL_ROOT, ignore_errors=True)
    REHEARSAL_ROOT.mkdir(parents=True)
    with running_cluster(REHEARSAL_ROOT) as c:  # each server gets cluster.STARTUP_TIMEOUT to come up on a loaded machine
        yield c

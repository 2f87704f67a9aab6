"""Fixtures of the manifest tests: every overlay built once per session."""

from __future__ import annotations

from typing import Any

import pytest
from manifest_checks import MANIFESTS, OVERLAYS, build


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(name, objects) of one overlay, for tests that must hold in every environment."""
    return request.param, build(MANIFESTS / "overlays" / request.param)


@pytest.fixture(scope="session")
def built() -> dict[str, list[dict[str, Any]]]:
    """Objects of every overlay by name."""
    return {name: build(MANIFESTS / "overlays" / name) for name in OVERLAYS}

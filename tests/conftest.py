"""Fixtures shared by every test: an isolated work directory and the local servers.

PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) run on this machine and in CI;
tests that need them get a fresh database / key prefix of their own.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.settings import Settings

# --doctest-modules would import every conftest.py under tests/ as a plain module named
# "conftest" and clash; they are still loaded as conftests, just not doctest-collected.
collect_ignore_glob = ["conftest.py", "*/conftest.py", "*/*/conftest.py", "*/*/*/conftest.py"]

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-default settings rooted in a fresh temporary work directory."""
    return Settings(workdir=tmp_path / "work")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests keep files a person may want to look at (screenshots, reports)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@contextlib.contextmanager
def fresh_database(prefix: str = "dl") -> Iterator[str]:
    """A new, empty PostgreSQL database on localhost:5432, dropped afterwards; yields its URL."""
    import psycopg2

    if not port_open("127.0.0.1", 5432):
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (start it: pg_ctlcluster <ver> main start)")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on localhost:5432, dropped afterwards."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    """The local Redis server (tests use their own key prefixes)."""
    if not port_open("127.0.0.1", 6379):
        pytest.fail("Redis is not running on 127.0.0.1:6379 (start it: redis-server --daemonize yes)")
    return "redis://127.0.0.1:6379/0"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with slow end-to-end tests run first, then files with servers, then the rest.

    ``make test`` runs under pytest-xdist with ``--dist loadfile`` (a file's tests on one worker,
    so its module fixtures start once): handing out the longest files first lets the workers
    finish together instead of one of them starting the demo last. The sort is stable, so the
    order inside a file is kept.
    """
    weight: dict[Path, int] = {}
    for item in items:
        rank = 0 if item.get_closest_marker("e2e") else 1 if item.get_closest_marker("integration") else 2
        weight[item.path] = min(weight.get(item.path, 2), rank)
    items.sort(key=lambda item: weight[item.path])

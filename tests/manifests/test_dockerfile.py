"""The Dockerfile, checked statically (no Docker engine here): pinned base, dependencies
before source for layer caching, a non-root user, no secrets, entrypoint driftloop.

``dockerfile_problems`` lists every rule a Dockerfile breaks; the real one must break
none, and each rule is shown to catch a bad Dockerfile.
"""

from __future__ import annotations

import json
import re

import pytest
from manifest_checks import REPO_ROOT

pytestmark = pytest.mark.unit

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")
SECRETISH = re.compile(r"(\.env\b|\.pem\b|\.key\b|id_rsa|credentials|secret|token|kubeconfig|\.netrc|\.pypirc)", re.I)
SOURCE_DIRS = ("driftloop", "components", "serving", "pipelines", "feature_repo", "policies")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    logical, buf = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        logical.append(buf + stripped)
        buf = ""
    return [(kw.upper(), args.strip()) for kw, _, args in (line.partition(" ") for line in logical)]


def _first(steps: list[tuple[str, str]], keyword: str, needle: str) -> int | None:
    return next((i for i, (k, a) in enumerate(steps) if k == keyword and needle in a), None)


def dockerfile_problems(text: str) -> list[str]:
    steps = instructions(text)
    problems = []
    bases = [a.split()[-1] if a.startswith("--") else a.split()[0] for k, a in steps if k == "FROM"]
    if not bases or not all(BASE.match(b) for b in bases):
        problems.append(f"base image not pinned to python:3.11.<patch>-slim-bookworm: {bases}")
    found = {
        "COPY constraints.txt": _first(steps, "COPY", "constraints.txt"),
        "RUN pip install -c constraints.txt -r": _first(steps, "RUN", "-c constraints.txt -r"),
        **{f"COPY {d}": _first(steps, "COPY", d) for d in SOURCE_DIRS},
        "RUN pip install -e .": _first(steps, "RUN", "-e ."),
    }
    at = {what: i for what, i in found.items() if i is not None}
    if len(at) < len(found):
        problems.append(f"layer caching: missing {sorted(set(found) - set(at))}")
    else:
        sources = [at[f"COPY {d}"] for d in SOURCE_DIRS]
        project = at["RUN pip install -e ."]
        if not at["COPY constraints.txt"] < at["RUN pip install -c constraints.txt -r"] < min(sources) <= max(sources) < project:
            problems.append("layer caching: dependencies must install before the source is copied")
        elif "--no-deps" not in steps[project][1]:
            problems.append("layer caching: the source layer must install with --no-deps")
    if any(k == "COPY" and a.split()[0] == "." for k, a in steps):
        problems.append("layer caching: COPY . copies the whole context")
    users = [i for i, (k, _) in enumerate(steps) if k == "USER"]
    if not users or steps[users[-1]][1].split(":")[0] != "10001":
        problems.append("USER: the image must end as uid 10001")
    elif any(k in {"RUN", "COPY"} for k, _ in steps[users[-1]:]):
        problems.append("USER: build steps after USER run as the app user; put USER last")
    if any(k == "ADD" for k, _ in steps):
        problems.append("ADD: use COPY (ADD fetches URLs and unpacks archives)")
    if any(k == "HEALTHCHECK" for k, _ in steps):
        problems.append("HEALTHCHECK: Kubernetes probes do health checks")
    problems += [f"secret-like {k}: {a}" for k, a in steps if k in {"COPY", "ENV", "ARG"} and SECRETISH.search(a)]
    entry = [a for k, a in steps if k == "ENTRYPOINT"]
    if not entry or json.loads(entry[-1]) != ["driftloop"]:
        problems.append("ENTRYPOINT must be [\"driftloop\"]")
    if [a for k, a in steps if k == "WORKDIR"] != ["/app"]:
        problems.append("WORKDIR must be /app")
    return problems


def test_the_dockerfile_breaks_no_rule() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def test_the_user_is_created_with_uid_10001() -> None:
    useradd = next(a for k, a in instructions(DOCKERFILE.read_text()) if k == "RUN" and "useradd" in a)
    assert "--uid 10001" in useradd and "--gid 10001" in useradd


def test_every_package_the_image_installs_is_pinned_in_constraints() -> None:
    """The image build resolves nothing freely: each dependency (and each extra the
    Dockerfile names) has an exact pin in constraints.txt."""
    import tomllib

    def norm(name: str) -> str:
        return re.split(r"[<>=\[ ;!~]", name.strip())[0].lower().replace("_", "-")

    pins = {norm(line) for line in (REPO_ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    install = next(a for k, a in instructions(DOCKERFILE.read_text()) if k == "RUN" and "-r /tmp/requirements.txt" in a)
    extras = install.split("-r /tmp/requirements.txt", 1)[1].split("&&", 1)[0].split()
    assert extras, "expected the cluster extras (psycopg2-binary, redis) after -r"
    missing = sorted({norm(d) for d in [*deps, *extras]} - pins)
    assert not missing, f"not pinned in constraints.txt: {missing}"


def test_dockerignore_keeps_state_and_secrets_out() -> None:
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".driftloop", "mlruns", "**/.env", "**/*.pem", "**/*.key"} <= ignored
    copied = [a.split()[0] for k, a in instructions(DOCKERFILE.read_text()) if k == "COPY"]
    assert not [c for c in copied if c in ignored], "the Dockerfile copies something .dockerignore excludes"


GOOD = DOCKERFILE.read_text()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("python:3.11.14-slim-bookworm", "python:3.11-slim"), "not pinned"),
        (GOOD.replace("python:3.11.14-slim-bookworm", "python:latest"), "not pinned"),
        (GOOD.replace("COPY serving ./serving", "COPY . ."), "COPY ."),
        (GOOD.replace("COPY pyproject.toml constraints.txt ./", "COPY serving ./serving-early\nCOPY pyproject.toml constraints.txt ./").replace("COPY serving ./serving\n", ""), "before the source"),
        (GOOD.replace("USER 10001:10001", "USER root"), "uid 10001"),
        (GOOD.replace("USER 10001:10001", ""), "uid 10001"),
        (GOOD.replace("COPY README.md ./", "ADD https://example.com/x.tgz /tmp/"), "ADD"),
        (GOOD.replace("COPY README.md ./", "COPY .env ./"), "secret-like"),
        (GOOD + "HEALTHCHECK CMD curl -f http://localhost:8080/\n", "HEALTHCHECK"),
        (GOOD.replace('ENTRYPOINT ["driftloop"]', 'ENTRYPOINT ["python"]'), "ENTRYPOINT"),
    ],
)
def test_each_rule_catches_a_bad_dockerfile(text: str, expected: str) -> None:
    assert text != GOOD
    assert any(expected in p for p in dockerfile_problems(text)), dockerfile_problems(text)


def test_instruction_parser_joins_continuations() -> None:
    assert instructions("# c\nFROM a:1\nRUN x \\\n && y\n\nUSER 1\n") == [("FROM", "a:1"), ("RUN", "x  && y"), ("USER", "1")]

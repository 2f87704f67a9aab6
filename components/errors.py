"""User-facing errors: one readable line naming the problem and the fix, exit code 2.

Library code raises :class:`DriftloopError` (or a subclass) for anything a user can fix
(bad input, a missing file, a server that is down). The CLI prints ``error: <problem>
(fix: <fix>)`` and exits with code 2 instead of showing a traceback.

>>> err = DriftloopError("column 'age' is missing from current data", fix="add the column or remove it from policy.features")
>>> str(err)
"column 'age' is missing from current data (fix: add the column or remove it from policy.features)"
"""

from __future__ import annotations


class DriftloopError(Exception):
    """An error the user can fix; ``fix`` says how."""

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} (fix: {fix})" if fix else problem)


class ConfigError(DriftloopError):
    """A policy or settings file is invalid."""


class DataError(DriftloopError):
    """Input data is missing, empty, malformed or does not match the expected schema."""


class ServiceUnavailable(DriftloopError):
    """A server driftloop depends on (MLflow, Feast, Prometheus, a model server) is unreachable."""

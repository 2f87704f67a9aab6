"""Local traffic backend: KServe ModelServer processes behind :mod:`serving.router`.

Every process is a ``sys.executable -m serving.predictor`` (or ``-m serving.router``)
subprocess on 127.0.0.1; :meth:`LocalBackend.close` terminates all of them.

Cohort specialists (``cohort_column``): :meth:`LocalBackend.add_route` starts a cohort's
specialist and routes that cohort's rows to it, :meth:`~LocalBackend.remove_route` retires
it. With ``canary_cohort`` set before :meth:`~LocalBackend.deploy_challenger`, the canary
is that cohort's only: the cohort's incumbent runs in a process of its own (its
specialist, or a copy of the global champion started for the canary), the router splits
only the cohort's rows between it and the challenger, and :meth:`~LocalBackend.metrics_targets`
lists just those two, so every figure the controller reads is the cohort's. Promotion
makes the challenger the cohort's specialist; rollback restores the cohort's route as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from components.errors import ConfigError, ServiceUnavailable
from serving.canary.backends import check_percent
from serving.canary.state import FileState, RolloutRecord

_REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ManagedProcess:
    """A child server process with a readiness URL."""

    def __init__(self, cmd: list[str], ready_url: str, log_path: Path) -> None:
        self.cmd = cmd
        self.ready_url = ready_url
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self.proc = subprocess.Popen(cmd, cwd=_REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise ServiceUnavailable(f"{' '.join(self.cmd[2:4])} exited with code {self.proc.returncode}: {' | '.join(tail)}",
                                         fix=f"see {self.log_path}")
            try:
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ServiceUnavailable(f"{self.ready_url} not ready after {timeout:.0f}s", fix=f"see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class LocalBackend:
    """Champion and challenger predictor processes behind one router process.

    ``challenger_args`` are extra predictor flags for the challenger (the fault tests pass
    ``--inject-error-rate`` / ``--inject-latency-ms``). ``challenger_port`` pins the port so
    a Prometheus config can list it in advance. The rollout record lives in
    ``<work_dir>/<model>-rollout.json`` (:class:`serving.canary.state.FileState`), so a
    controller restarted on the same work directory resumes or is refused.
    """

    def __init__(
        self,
        model_name: str,
        champion_uri: str,
        *,
        tracking_uri: str,
        log_dir: str | Path,
        work_dir: str | Path | None = None,
        router_port: int | None = None,
        champion_port: int | None = None,
        challenger_port: int | None = None,
        challenger_args: Sequence[str] = (),
        policy: str | None = None,
        drain_seconds: float = 1.0,
        champion_url: str | None = None,
        cohort_column: str | None = None,
        canary_cohort: str | None = None,
        ready_timeout: float = 120.0,
    ) -> None:
        self.model_name = model_name
        self.cohort_column = cohort_column
        self.ready_timeout = ready_timeout  # for servers started by the controller (deploy_challenger)
        self.canary_cohort = canary_cohort
        self.cohorts: dict[str, ManagedProcess] = {}  # cohort -> its specialist's process (the router's routes)
        self._canary_copy = False  # the cohort's process was started for the canary (it had no specialist)
        self.champion_uri = champion_uri
        self.tracking_uri = tracking_uri
        self.log_dir = Path(log_dir)
        self.work_dir = Path(work_dir) if work_dir else self.log_dir.parent / "servers"
        self.router_port = router_port or free_port()
        self.champion_port = champion_port or free_port()
        self.challenger_port = challenger_port
        self.challenger_args = list(challenger_args)
        self.policy = policy
        self.drain_seconds = drain_seconds
        self.champion: ManagedProcess | None = None
        self.challenger: ManagedProcess | None = None
        self.router: ManagedProcess | None = None
        # An already running champion (not started here, so never stopped here).
        self._external_champion = champion_url.rstrip("/") if champion_url else None
        self.state = FileState(self.work_dir / f"{model_name}-rollout.json")

    def read_state(self) -> tuple[RolloutRecord | None, str]:
        """The rollout record in the state file and its version."""
        return self.state.read_state()

    def write_state(self, record: RolloutRecord, token: str) -> str:
        """Write the record if the file is still at version ``token``."""
        return self.state.write_state(record, token)

    @property
    def url(self) -> str:
        """The router: where clients send requests."""
        return f"http://127.0.0.1:{self.router_port}"

    def _predictor(self, uri: str, port: int, role: str, extra: Sequence[str] = ()) -> ManagedProcess:
        cmd = [sys.executable, "-m", "serving.predictor", "--model-name", self.model_name, "--model-uri", uri,
               "--http-port", str(port), "--log-dir", str(self.log_dir), "--tracking-uri", self.tracking_uri, *extra]
        if self.policy:
            cmd += ["--policy", self.policy]
        return ManagedProcess(cmd, f"http://127.0.0.1:{port}/v2/health/ready", self.work_dir / f"{role}-{port}.log")

    @property
    def champion_url(self) -> str:
        if self.champion is not None:
            return self._base(self.champion)
        if self._external_champion:
            return self._external_champion
        raise ServiceUnavailable("the local backend has no champion", fix="call LocalBackend.start() first")

    def start(self, timeout: float = 120.0) -> LocalBackend:
        """Start the champion (unless one was given) and the router; returns self."""
        if self._external_champion is None:
            self.champion = self._predictor(self.champion_uri, self.champion_port, "champion")
        cohort_args = ["--cohort-column", self.cohort_column] if self.cohort_column else []
        self.router = ManagedProcess(
            [sys.executable, "-m", "serving.router", "--port", str(self.router_port), "--champion", self.champion_url, *cohort_args],
            f"{self.url}/healthz", self.work_dir / f"router-{self.router_port}.log")
        try:
            if self.champion is not None:
                self.champion.wait_ready(timeout)
            self.router.wait_ready(timeout)
        except Exception:
            self.close()
            raise
        return self

    @staticmethod
    def _base(proc: ManagedProcess) -> str:
        return proc.ready_url.removesuffix("/v2/health/ready").removesuffix("/healthz")

    def _admin(self, path: str, body: dict | None = None) -> dict:
        import httpx

        try:
            r = httpx.post(f"{self.url}{path}", json=body, timeout=10) if body is not None else httpx.get(f"{self.url}{path}", timeout=10)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"router {self.url} unreachable: {exc}", fix="start the backend (LocalBackend.start)") from None
        if r.status_code != 200:
            raise ServiceUnavailable(f"router refused {path}: {r.text}", fix="check the router log")
        return dict(r.json())

    def _split(self, challenger: str | None = None, percent: int = 0) -> dict:
        """The router's whole split: servers, cohort routes and the canary's cohort."""
        return {"champion": self.champion_url, "challenger": challenger, "percent": percent, "cohort_column": self.cohort_column,
                "routes": {c: self._base(p) for c, p in self.cohorts.items()}, "cohort": self.canary_cohort if challenger else None}

    def add_route(self, cohort: str, model_uri: str, timeout: float = 120.0) -> str:
        """Start ``cohort``'s specialist (``model_uri``) and route the cohort's rows to it; returns its URL."""
        if not self.cohort_column:
            raise ConfigError("cohort routes need the backend's cohort_column", fix="pass cohort_column= (the policy's segment column)")
        if self.router is None:
            self.start(timeout)
        proc = self._predictor(model_uri, free_port(), f"cohort-{cohort}")
        try:
            proc.wait_ready(timeout)
        except Exception:
            proc.stop()
            raise
        old, self.cohorts[cohort] = self.cohorts.get(cohort), proc
        self._admin("/admin/backends", self._split())
        if old is not None:
            time.sleep(self.drain_seconds)
            old.stop()
        return self._base(proc)

    def remove_route(self, cohort: str) -> None:
        """Retire ``cohort``'s specialist: its rows go to the global champion again, then its process stops."""
        proc = self.cohorts.pop(cohort, None)
        if proc is None:
            return
        self._admin("/admin/backends", self._split())
        time.sleep(self.drain_seconds)
        proc.stop()

    def deploy_challenger(self, model_uri: str, timeout: float | None = None) -> None:
        """Start the challenger process and register it with the router at 0%.

        With ``canary_cohort``, the cohort's incumbent gets a process of its own first (a
        copy of the global champion when the cohort has no specialist).
        """
        timeout = timeout or self.ready_timeout
        if self.router is None:
            self.start(timeout)
        cohort = self.canary_cohort
        if cohort is not None and cohort not in self.cohorts:
            self.add_route(cohort, self.champion_uri, timeout)
            self._canary_copy = True
        port = self.challenger_port or free_port()
        self.challenger = self._predictor(model_uri, port, "challenger", self.challenger_args)
        try:
            self.challenger.wait_ready(timeout)
        except Exception:
            self.challenger.stop()
            self.challenger = None
            raise
        self._admin("/admin/backends", self._split(self._base(self.challenger), 0))

    def wait_ready(self, timeout: float | None = None) -> None:
        for proc in (self.champion, self.challenger, self.router, *self.cohorts.values()):
            if proc is not None:
                proc.wait_ready(timeout or self.ready_timeout)

    def set_traffic(self, percent: int) -> None:
        self._admin("/admin/traffic", {"percent": check_percent(percent)})

    def current_traffic(self) -> int:
        return int(self._admin("/admin/traffic")["percent"])

    def promote(self) -> None:
        """Route everything to the challenger, then retire the old champion once drained.

        In a cohort canary the challenger becomes the cohort's specialist instead, and the
        global champion is untouched.
        """
        if self.challenger is None:
            raise ServiceUnavailable("no challenger to promote", fix="deploy_challenger first")
        if self.canary_cohort is not None:
            self.set_traffic(100)
            old, self.cohorts[self.canary_cohort], self.challenger = self.cohorts.get(self.canary_cohort), self.challenger, None
            self._canary_copy = False
            self._admin("/admin/backends", self._split())
            time.sleep(self.drain_seconds)
            if old is not None:
                old.stop()
            return
        self.set_traffic(100)
        self._admin("/admin/backends", {"champion": self._base(self.challenger), "challenger": None, "percent": 0})
        time.sleep(self.drain_seconds)  # let requests already sent to the old champion finish
        old, self.champion, self.challenger = self.champion, self.challenger, None
        self._external_champion = None
        if old is not None:
            old.stop()

    def rollback(self) -> None:
        """Route everything to the champion, then stop the challenger once drained."""
        if self.router is None:
            return
        copy = self.cohorts.pop(self.canary_cohort) if self.canary_cohort in self.cohorts and self._canary_copy else None
        self._canary_copy = False
        self._admin("/admin/backends", self._split())
        time.sleep(self.drain_seconds)
        for proc in (self.challenger, copy):
            if proc is not None:
                proc.stop()
        self.challenger = None

    def metrics_targets(self) -> list[str]:
        """The servers whose /metrics the canary reads: in a cohort canary only the cohort's incumbent and the challenger."""
        if self.canary_cohort is not None and self.canary_cohort in self.cohorts:
            return [self._base(p) for p in (self.cohorts[self.canary_cohort], self.challenger) if p is not None]
        urls = [self._base(p) for p in (self.champion, self.challenger) if p is not None]
        return [self._external_champion, *urls] if self._external_champion else urls

    def close(self) -> None:
        """Stop every process this backend started."""
        for proc in (self.router, self.challenger, self.champion, *self.cohorts.values()):
            if proc is not None:
                proc.stop()
        self.router = self.challenger = self.champion = None
        self.cohorts = {}

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

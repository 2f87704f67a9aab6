"""Runtime settings: where driftloop keeps its state and which servers it talks to.

Embedded defaults (files and SQLite under a work directory) need no configuration; every
value can be overridden by an environment variable ``DRIFTLOOP_<NAME>`` so the same code
runs on a laptop and in a cluster pod.

>>> s = Settings.from_env({"DRIFTLOOP_WORKDIR": "/tmp/dl"})
>>> s.mlflow_tracking_uri
'sqlite:////tmp/dl/mlflow.db'
>>> str(s.artifact_root)
'/tmp/dl/mlartifacts'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from components.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = REPO_ROOT / "policies"
FEATURE_REPO_DIR = REPO_ROOT / "feature_repo"


@dataclass(frozen=True)
class Settings:
    """Where state lives and which servers to use. Build with :meth:`from_env`."""

    workdir: Path = field(default_factory=lambda: Path(".driftloop").resolve())
    mlflow_tracking_uri: str = ""
    mlflow_artifact_root: str = ""
    feature_repo: Path = FEATURE_REPO_DIR
    feast_config: str = "local"  # "local" (parquet + SQLite) or "production" (PostgreSQL + Redis)
    rollout_steps: tuple[int, ...] = ()  # overrides every policy's rollout.steps when set (e.g. a dev overlay)
    rollout_interval_seconds: float | None = None  # overrides rollout.interval_seconds when set
    prometheus_url: str = ""  # empty: read each model server's own /metrics
    webhook_url: str = ""  # Slack-compatible incoming webhook; empty: no notification
    log_fsync: str = "interval"  # prediction log: "none" | "interval" (about 1 s) | "always" (each batch)
    log_retention_days: float = 0  # prediction log files older than this are removed; 0 keeps all
    ledger_url: str = ""  # PostgreSQL URL of the decision ledger (shared by pods); empty: SQLite under workdir
    pushgateway_url: str = ""  # Prometheus Pushgateway the pipeline steps push their metrics to; empty: no push

    def __post_init__(self) -> None:
        if not self.mlflow_tracking_uri:
            object.__setattr__(self, "mlflow_tracking_uri", f"sqlite:///{self.workdir}/mlflow.db")
        if not self.mlflow_artifact_root:
            object.__setattr__(self, "mlflow_artifact_root", str(self.workdir / "mlartifacts"))

    @property
    def artifact_root(self) -> Path:
        return Path(self.mlflow_artifact_root)

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``DRIFTLOOP_*`` variables; unset ones keep the embedded defaults."""
        env = os.environ if env is None else env
        kwargs: dict[str, object] = {}
        kwargs.update(_rollout_overrides(env))
        if env.get("DRIFTLOOP_WORKDIR"):
            kwargs["workdir"] = Path(env["DRIFTLOOP_WORKDIR"]).resolve()
        for name in ("mlflow_tracking_uri", "mlflow_artifact_root", "feast_config", "prometheus_url", "webhook_url", "ledger_url", "pushgateway_url"):
            value = env.get(f"DRIFTLOOP_{name.upper()}")
            if value:
                kwargs[name] = value
        if env.get("DRIFTLOOP_FEATURE_REPO"):
            kwargs["feature_repo"] = Path(env["DRIFTLOOP_FEATURE_REPO"]).resolve()
        fsync, days = env.get("DRIFTLOOP_LOG_FSYNC", ""), env.get("DRIFTLOOP_LOG_RETENTION_DAYS", "")
        if fsync or days:
            from components.errors import ConfigError

            if fsync and fsync not in ("none", "interval", "always"):
                raise ConfigError(f"DRIFTLOOP_LOG_FSYNC={fsync!r} is not none, interval or always", fix="set DRIFTLOOP_LOG_FSYNC to one of them")
            if days and not (days.replace(".", "", 1).isdigit()):
                raise ConfigError(f"DRIFTLOOP_LOG_RETENTION_DAYS={days!r} is not a number of days >= 0", fix="set it to e.g. 30 (0 keeps every file)")
            if fsync:
                kwargs["log_fsync"] = fsync
            if days:
                kwargs["log_retention_days"] = float(days)
        return cls(**kwargs)  # type: ignore[arg-type]

    def rollout_overrides(self) -> dict[str, object]:
        """The policy ``rollout`` fields these settings override (empty when none is set).

        >>> Settings.from_env({"DRIFTLOOP_ROLLOUT_STEPS": "50,100", "DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS": "10"}).rollout_overrides()
        {'steps': [50, 100], 'interval_seconds': 10.0}
        """
        out: dict[str, object] = {}
        if self.rollout_steps:
            out["steps"] = list(self.rollout_steps)
        if self.rollout_interval_seconds is not None:
            out["interval_seconds"] = self.rollout_interval_seconds
        return out

    def with_workdir(self, workdir: Path) -> Settings:
        """A copy rooted at another work directory (derived paths follow it)."""
        return replace(self, workdir=workdir.resolve(), mlflow_tracking_uri="", mlflow_artifact_root="")


def _rollout_overrides(env: Mapping[str, str]) -> dict[str, object]:
    """Parse ``DRIFTLOOP_ROLLOUT_STEPS`` ("10,50,100") and ``DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS``; empty means unset.

    >>> _rollout_overrides({"DRIFTLOOP_ROLLOUT_STEPS": "10, 100", "DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS": ""})
    {'rollout_steps': (10, 100)}
    """
    out: dict[str, object] = {}
    steps = (env.get("DRIFTLOOP_ROLLOUT_STEPS") or "").strip()
    if steps:
        try:
            values = tuple(int(s) for s in steps.split(","))
        except ValueError:
            raise ConfigError(f"DRIFTLOOP_ROLLOUT_STEPS={steps!r} is not a comma-separated list of percents", fix="use e.g. 10,50,100") from None
        if not values or any(not 0 < v <= 100 for v in values) or list(values) != sorted(set(values)) or values[-1] != 100:
            raise ConfigError(f"DRIFTLOOP_ROLLOUT_STEPS={steps!r} must rise strictly from above 0 to 100", fix="use e.g. 10,50,100")
        out["rollout_steps"] = values
    interval = (env.get("DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS") or "").strip()
    if interval:
        try:
            seconds = float(interval)
        except ValueError:
            seconds = -1.0
        if not seconds >= 0:
            raise ConfigError(f"DRIFTLOOP_ROLLOUT_INTERVAL_SECONDS={interval!r} is not a number of seconds >= 0", fix="use e.g. 30")
        out["rollout_interval_seconds"] = seconds
    return out

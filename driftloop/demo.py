"""The whole loop on one machine: data -> features -> champion -> serve -> replay -> monitor -> retrain -> canary.

Everything runs on embedded defaults: scenario data as parquet, Feast with a file offline
store and SQLite online store, MLflow on SQLite, the train and monitor pipelines through
``kfp.local``, KServe ModelServer processes behind the local canary router, and the canary
controller reading the servers' own /metrics and the prediction log joined with labels.

Time is compressed: each replayed period's requests are sent as fast as the servers take
them, and labels "arrive" when the period closes (only those whose ``label_timestamp`` has
passed are known then; the rest join later). A canary's analysis interval is a fixed number
of requests of the next period's traffic, so the run does not sleep.

>>> plan = plan_for("churn")
>>> [p.strftime("%Y-%m") for p in plan.periods][:3], plan.train_end.date().isoformat()
(['2025-05', '2025-06', '2025-07'], '2025-01-01')
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.errors import DataError, DriftloopError
from components.settings import Settings

log = logging.getLogger("driftloop.demo")


@dataclass(frozen=True)
class DemoPlan:
    """How a scenario is replayed: data size, the champion's training cut-off, the periods."""

    scenario: str
    rows: int
    train_end: pd.Timestamp
    periods: list[pd.Timestamp]
    period: pd.DateOffset
    label: str  # how a period is written on the dashboard (strftime)
    batch: int = 25  # instances per request during the replay
    canary_batch: int = 4  # instances per request during a canary (more requests, finer split)
    canary_requests: int = 160  # requests per analysis interval
    min_requests: int = 12  # per arm per step, for the demo's short intervals
    seed: int = 0
    rollout_steps: tuple[int, ...] = (10, 25, 50, 100)


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def plan_for(scenario: str, seed: int = 0) -> DemoPlan:
    """The replay plan of a seed scenario (its onset falls inside the replayed periods)."""
    month, hours12 = pd.DateOffset(months=1), pd.DateOffset(hours=12)
    plans = {
        "churn": DemoPlan("churn", 48_000, _utc("2025-01-01"),
                          list(pd.date_range("2025-05-01", "2025-10-01", freq="MS", tz="UTC")), month, "%Y-%m"),
        "credit": DemoPlan("credit", 60_000, _utc("2025-01-01"),
                           list(pd.date_range("2025-03-01", "2025-12-01", freq="MS", tz="UTC")), month, "%Y-%m"),
        "fraud": DemoPlan("fraud", 100_000, _utc("2025-03-07"),
                          list(pd.date_range("2025-03-08", "2025-03-13 12:00", freq="12h", tz="UTC")), hours12, "%m-%d %Hh",
                          batch=50),
        "recsys": DemoPlan("recsys", 120_000, _utc("2025-05-22"),
                           list(pd.date_range("2025-05-24", "2025-06-27", freq="4D", tz="UTC")), pd.DateOffset(days=4), "%m-%d",
                           batch=50),
        "concept": DemoPlan("concept", 72_000, _utc("2025-04-08"),
                            list(pd.date_range("2025-04-10", "2025-04-29", freq="2D", tz="UTC")), pd.DateOffset(days=2), "%m-%d"),
    }
    if scenario not in plans:
        raise DataError(f"unknown scenario {scenario!r}", fix=f"use one of: {', '.join(sorted(plans))}")
    plan = plans[scenario]
    return plan if seed == plan.seed else DemoPlan(**{**plan.__dict__, "seed": seed})


@dataclass
class Traffic:
    """Sends scenario rows to the router as KServe v1 requests and remembers their labels."""

    url: str
    model: str
    features: list[str]
    label_columns: list[str]
    workers: int = 4
    sent: int = 0
    failed: int = 0
    labels: list[pd.DataFrame] = field(default_factory=list)
    served: list[tuple[str, bool]] = field(default_factory=list)  # (arm, ok) per request
    _client: Any = None

    def __post_init__(self) -> None:
        import httpx

        self._client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=self.workers * 2))

    def send(self, rows: pd.DataFrame, prefix: str, batch: int) -> list[str]:
        """Send ``rows`` in requests of ``batch`` instances; return the logged request ids."""
        chunks = [rows.iloc[i:i + batch] for i in range(0, len(rows), batch)]
        ids: list[str] = []
        payloads = []
        for n, chunk in enumerate(chunks):
            rid = f"{prefix}-{n}"
            records = chunk[self.features].astype(object).where(chunk[self.features].notna(), None).to_dict("records")
            payloads.append((rid, {"instances": records}))
            row_ids = [rid] if len(chunk) == 1 else [f"{rid}-{i}" for i in range(len(chunk))]
            ids.extend(row_ids)
            self.labels.append(chunk[self.label_columns].assign(request_id=row_ids))
        with ThreadPoolExecutor(self.workers) as pool:
            results = list(pool.map(self._post, payloads))
        self.sent += len(results)
        self.failed += sum(1 for ok in results if not ok)
        return ids

    def _post(self, item: tuple[str, dict[str, Any]]) -> bool:
        rid, body = item
        try:
            r = self._client.post(f"{self.url}/v1/models/{self.model}:predict", json=body, headers={"x-request-id": rid})
        except Exception:  # a refused connection counts as a failed request, the replay goes on
            self.served.append(("none", False))
            return False
        self.served.append((r.headers.get("x-served-by", "none"), r.status_code == 200))
        return r.status_code == 200

    def label_frame(self) -> pd.DataFrame:
        return pd.concat(self.labels, ignore_index=True) if self.labels else pd.DataFrame(columns=["request_id"])

    def close(self) -> None:
        self._client.close()


def _policy_yaml(policy: Any, plan: DemoPlan) -> str:
    """The scenario's policy with the rollout tuned for compressed time (fewer requests per step)."""
    import yaml

    raw = policy.model_dump(mode="json", exclude_none=True)
    raw["rollout"] = {**raw["rollout"], "min_requests": plan.min_requests, "steps": list(plan.rollout_steps), "interval_seconds": 1}
    return yaml.safe_dump(raw, sort_keys=False)


def _read_report(run: Any) -> dict[str, Any]:
    for path in run.artifacts("report"):
        try:
            return dict(json.loads(path.read_text()))
        except (ValueError, OSError):
            continue
    raise DriftloopError(f"the monitor run under {run.run_dir} wrote no report", fix="read the task logs above")


def _gate_reasons(run: Any) -> list[str]:
    """The champion-vs-challenger gate's reasons from a train run's ``verdict`` artifact."""
    for path in run.artifacts("verdict"):
        try:
            return [str(r) for r in json.loads(path.read_text()).get("reasons", [])]
        except (ValueError, OSError, AttributeError):
            continue
    return []


def _period_figures(report: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Performance metrics, per-feature drift and monitor one-liners from a monitor report."""
    metrics, drift, monitors = [], [], []
    for m in report.get("monitors", []):
        monitors.append({"name": m.get("name"), "type": m.get("type"), "fired": bool(m.get("fired")), "summary": m.get("summary", "")})
        for r in m.get("results", []):
            if m.get("type") == "performance" and r.get("metric"):
                metrics.append({"monitor": m["name"], "metric": r["metric"], "segment": r.get("segment"), "value": r.get("statistic"),
                                "threshold": r.get("threshold"), "fired": bool(r.get("drift")), "status": r.get("status")})
            elif m.get("type") == "feature_drift" and r.get("feature") and r.get("segment") in (None, "") and r.get("test") != "psi":
                drift.append({"feature": r["feature"], "statistic": r.get("statistic"), "p_value": r.get("p_value"), "drift": bool(r.get("drift"))})
    return metrics, drift, monitors


class Demo:
    """One demo run; :meth:`run` returns the summary dict also written to ``summary.json``."""

    def __init__(self, scenario: str, workdir: Path, bad_challenger: bool = False, seed: int = 0,
                 say: Callable[[str], None] = print, progress: Any = None) -> None:
        from components.policy import load_policy

        self.plan = plan_for(scenario, seed)
        self.policy = load_policy(scenario)
        self.workdir = workdir.resolve()
        self.settings = Settings(workdir=self.workdir)
        self.bad_challenger = bad_challenger
        self.say = say
        self.progress = progress
        self.policy_yaml = _policy_yaml(self.policy, self.plan)
        self.summary: dict[str, Any] = {"scenario": scenario, "workdir": str(self.workdir), "bad_challenger": bad_challenger,
                                        "policy_overrides": {"rollout": {"steps": list(self.plan.rollout_steps),
                                                                         "min_requests": self.plan.min_requests}},
                                        "phases": {}, "periods": [], "events": [], "rollouts": []}

    # -- phases -------------------------------------------------------------------------
    def _phase(self, name: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        task = self.progress.add_task(name, total=None) if self.progress else None
        try:
            return fn()
        finally:
            seconds = round(time.perf_counter() - started, 2)
            self.summary["phases"][name] = seconds
            if task is not None:
                self.progress.update(task, total=1, completed=1, description=f"{name} ({seconds:.1f} s)")

    def prepare_data(self) -> pd.DataFrame:
        from components.data.scenarios import write_scenario

        path = write_scenario(self.plan.scenario, self.settings.data_dir, rows=self.plan.rows, seed=self.plan.seed)
        self.data_path = path
        return pd.read_parquet(path)

    def prepare_features(self) -> None:
        from components import features

        features.apply(self.settings)
        features.ingest(self.plan.scenario, self.settings)
        last = self.plan.periods[-1] + self.plan.period
        features.materialize(self.plan.scenario, self.plan.periods[-1] - self.plan.period, last, self.settings)

    def train(self, end: pd.Timestamp, strategy: str = "full", window: str = "", cohort: str = "", decision_key: str = "") -> bool:

        run = self._run_pipeline("train", "", {"strategy": strategy, "end": end.isoformat(), "window": window, "cohort": cohort,
                                               "decision_key": decision_key})
        self.last_gate_reasons = _gate_reasons(run)
        return bool(run.outputs.get("Output", False))

    def _run_pipeline(self, name: str, source: str, params: dict[str, Any]) -> Any:
        """Run a pipeline with kfp.local, once more if a task process dies.

        A task subprocess occasionally aborts at interpreter exit ("terminate called without
        an active exception", seen once in ~40 runs here) after writing its outputs; KFP on a
        cluster retries such steps (set_retry), kfp.local does not, so the demo retries the
        run. Registration is idempotent on the decision key, so a retried train run reuses
        its version.
        """
        from pipelines.local import run_pipeline

        for attempt in (1, 2):
            try:
                with captured_output(self.workdir / "logs" / "pipelines.log"):
                    return run_pipeline(name, self.policy_yaml, self.workdir, source=source, params=params)
            except DriftloopError as exc:
                if attempt == 2:
                    raise
                self.say(f"[yellow]{name} pipeline failed ({exc.problem[:160]}); retrying once[/yellow]")
        raise AssertionError("unreachable")

    def bootstrap_champion(self) -> Any:
        """The first model has no champion to beat: promote the gated challenger to champion."""
        reg = self.registry()
        champion = reg.get(self.policy.model, "champion")
        if champion is None:
            challenger = reg.get(self.policy.model, "challenger")
            if challenger is None:
                raise DriftloopError("the first training run registered no model", fix=f"read {self.workdir / 'logs' / 'pipelines.log'}")
            champion = reg.promote(self.policy.model, challenger.version, actor="driftloop-demo",
                                   reason="first model of the demo: no champion to compare with")
        return champion

    def registry(self) -> Any:
        from components.registry import ModelRegistry

        return ModelRegistry(self.settings)

    def monitor(self, period: pd.Timestamp, current: pd.DataFrame, version: str) -> dict[str, Any]:

        reference = self.registry().reference_sample(self.policy.model, "champion")
        ts = self.policy.timestamp
        ref_start, ref_end = reference[ts].min(), reference[ts].max() + pd.Timedelta(seconds=1)
        source = self.workdir / "monitor" / period.strftime("%Y%m%dT%H") / "source.parquet"
        source.parent.mkdir(parents=True, exist_ok=True)
        pd.concat([reference, current[[c for c in reference.columns if c in current.columns]]], ignore_index=True).to_parquet(source, index=False)
        run = self._run_pipeline("monitor", str(source),
                                 {"reference_start": ref_start.isoformat(), "reference_end": ref_end.isoformat(),
                                  "current_start": period.isoformat(), "current_end": (period + self.plan.period).isoformat(),
                                  "model_version": version})
        report = _read_report(run)
        report["pipeline_seconds"] = round(run.seconds, 2)
        return report

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from serving.canary.local import LocalBackend

        started = time.perf_counter()
        data = self._phase("generate data", self.prepare_data)
        self._phase("apply and materialize features (Feast)", self.prepare_features)
        self._phase("train champion (train pipeline, kfp.local)", lambda: self.train(self.plan.train_end))
        champion = self.bootstrap_champion()
        self.say(f"champion: {self.policy.model} v{champion.version} trained on data before {self.plan.train_end.date()}")
        log_dir = self.workdir / "prediction-log"
        policy_file = self.workdir / "policy.yaml"
        policy_file.write_text(self.policy_yaml)
        backend = LocalBackend(self.policy.model, f"models:/{self.policy.model}@champion", tracking_uri=self.settings.mlflow_tracking_uri,
                               log_dir=log_dir, work_dir=self.workdir / "servers", policy=str(policy_file), drain_seconds=0.5)
        label_cols = [c for c in dict.fromkeys([self.policy.entity, self.policy.timestamp, self.policy.label, self.policy.segment_column,
                                                 "label_timestamp"]) if c and c in data.columns]
        traffic = Traffic("", self.policy.model, self.policy.all_features, label_cols)
        try:
            self._phase("start model server and router (KServe ModelServer)", lambda: backend.start(timeout=180))
            traffic.url = backend.url
            self._replay(data, backend, traffic, log_dir)
        finally:
            traffic.close()
            backend.close()
        final = self.registry().get(self.policy.model, "champion")
        self.summary.update({"final_champion": str(final.version) if final else None, "requests": traffic.sent,
                             "failed_requests": traffic.failed, "duration_s": round(time.perf_counter() - started, 1),
                             "audit_trail": self.registry().history(self.policy.model)})
        return self.summary

    def _replay(self, data: pd.DataFrame, backend: Any, traffic: Traffic, log_dir: Path) -> None:

        ts = pd.to_datetime(data[self.policy.timestamp], utc=True)
        task = self.progress.add_task("replay periods", total=len(self.plan.periods)) if self.progress else None
        n_rollouts = 0
        for i, period in enumerate(self.plan.periods):
            end = period + self.plan.period
            rows = data[(ts >= period) & (ts < end)]
            champion = self.registry().get(self.policy.model, "champion")
            version = str(champion.version) if champion else ""
            ids = traffic.send(rows, f"p{i}", self.plan.batch)
            logged = self._wait_for_log(log_dir, ids)
            labels = traffic.label_frame()
            labels = labels[labels["request_id"].isin(ids)].copy()
            # labels not yet known when the period closes stay missing (NaN) in this window
            if "label_timestamp" in labels:
                known = pd.to_datetime(labels["label_timestamp"], utc=True) <= end
                labels[self.policy.label] = labels[self.policy.label].where(known)
                labels = labels.drop(columns=["label_timestamp"])
            current = logged.drop(columns=[c for c in labels.columns if c in logged.columns and c != "request_id"]).merge(labels, on="request_id")
            current = current.rename(columns={"prediction": self.policy.prediction})
            report = self.monitor(period, current, version)
            decision = report.get("decision", {})
            metrics, drift, monitors = _period_figures(report)
            name = period.strftime(self.plan.label)
            self.summary["periods"].append({"period": name, "start": period.isoformat(), "model_version": version, "rows": len(rows),
                                            "labelled": int(current[self.policy.label].notna().sum()), "metrics": metrics,
                                            "drift": drift, "monitors": monitors, "decision": decision,
                                            "monitor_pipeline_s": report.get("pipeline_seconds")})
            action = decision.get("action", "none")
            self.say(f"{name}: v{version} served {len(rows)} rows; decision {action}"
                     + (f" ({decision.get('strategy')})" if action == "retrain" else "")
                     + "".join(f"\n    - {r}" for r in decision.get("reasons", [])))
            if action != "none":
                self.summary["events"].append({"period": name, "action": action, "strategy": decision.get("strategy"),
                                               "window": decision.get("window"), "cohort": decision.get("cohort"),
                                               "reasons": decision.get("reasons", [])})
            if action == "retrain":
                nxt = self.plan.periods[i + 1] if i + 1 < len(self.plan.periods) else period
                live = data[(ts >= nxt) & (ts < nxt + self.plan.period)]
                self._retrain_and_roll_out(decision, end, name, live, backend, traffic, log_dir, n_rollouts)
                n_rollouts += 1
            if task is not None:
                self.progress.update(task, advance=1, description=f"replay periods ({name})")

    def _retrain_and_roll_out(self, decision: dict[str, Any], end: pd.Timestamp, name: str, live: pd.DataFrame,
                              backend: Any, traffic: Traffic, log_dir: Path, index: int) -> None:
        from serving.canary.controller import run_rollout
        from serving.prometheus import DirectSource

        reg = self.registry()
        before = reg.get(self.policy.model, "challenger")
        passed = self.train(end, decision.get("strategy") or "full", decision.get("window") or "", decision.get("cohort") or "",
                            decision.get("idempotency_key") or "")
        challenger = reg.get(self.policy.model, "challenger")
        if not passed or challenger is None or (before is not None and challenger.version == before.version):
            self.say(f"{name}: the challenger did not pass the gate against the champion; no rollout")
            self.summary["events"].append({"period": name, "action": "gate_failed", "strategy": decision.get("strategy"),
                                           "reasons": getattr(self, "last_gate_reasons", [])})
            return
        champion = reg.get(self.policy.model, "champion")
        self._versions = (str(champion.version) if champion else "", str(challenger.version))
        bad = self.bad_challenger and not self.summary["rollouts"]  # only the first challenger that reaches a canary
        backend.challenger_args = ["--inject-error-rate", "0.3"] if bad else []
        rng = np.random.default_rng(self.plan.seed + index)
        batches = iter(range(10_000))

        interval_stats: list[dict[str, Any]] = []

        def interval(_seconds: float) -> None:
            # one analysis interval = a fixed number of requests of the next period's traffic
            n = self.plan.canary_requests * self.plan.canary_batch
            sample = live.iloc[rng.integers(0, len(live), n)] if len(live) else live
            first = len(traffic.served)
            ids = traffic.send(sample, f"c{index}-{next(batches)}", self.plan.canary_batch)
            self._wait_for_log(log_dir, ids)
            interval_stats.append(self._arm_figures(traffic, first, ids, log_dir))

        lines: list[str] = []
        result = run_rollout(self.policy_yaml_obj(), backend, DirectSource(backend.metrics_targets), reg,
                             challenger_uri=f"models:/{self.policy.model}/{challenger.version}",
                             labels=lambda: traffic.label_frame().drop(columns=["label_timestamp"], errors="ignore"),
                             log_dir=log_dir, sleep=interval, on_step=lambda line: (lines.append(line), self.say(f"  canary {line}")),
                             actor="driftloop-demo")
        record = result.to_dict()
        record.update({"period": name, "from_version": str(champion.version) if champion else None,
                       "to_version": str(challenger.version), "bad_challenger": bad, "log": lines})
        for step, figures in zip(record.get("steps", []), interval_stats, strict=False):
            step.update(figures)
        self.summary["rollouts"].append(record)

    def _wait_for_log(self, log_dir: Path, ids: list[str], timeout: float = 5.0) -> pd.DataFrame:
        """The logged rows of ``ids``, once the servers have flushed them (every 0.2 s).

        Rows of failed requests are never logged, so it stops waiting when the count stops
        growing, or after ``timeout`` seconds.
        """
        from serving.prediction_log import read_log

        wanted, seen, deadline = set(ids), -1, time.monotonic() + timeout
        while True:
            time.sleep(0.3)
            logged = read_log(log_dir, self.policy.model)
            logged = logged[logged["request_id"].isin(wanted)]
            if len(logged) >= len(wanted) or len(logged) == seen or time.monotonic() > deadline:
                return logged
            seen = len(logged)

    def _arm_figures(self, traffic: Traffic, first: int, ids: list[str], log_dir: Path) -> dict[str, Any]:
        """Requests, error rate and labelled accuracy of each arm over one canary interval."""
        from serving.prediction_log import read_log

        out: dict[str, Any] = {}
        served = traffic.served[first:]
        for arm in ("champion", "challenger"):
            calls = [ok for who, ok in served if who == arm]
            out[arm] = {"requests": len(calls), "error_rate": (1 - sum(calls) / len(calls)) if calls else None}
        logged = read_log(log_dir, self.policy.model)
        logged = logged[logged["request_id"].isin(ids)]
        labels = traffic.label_frame()[["request_id", self.policy.label]]
        joined = logged.merge(labels, on="request_id")
        if len(joined):
            correct = (joined["prediction"] >= 0.5).astype(int) == joined[self.policy.label].astype(int)
            by_version = correct.groupby(joined["model_version"].astype(str)).mean()
            for arm, version in (("champion", self._versions[0]), ("challenger", self._versions[1])):
                if version in by_version.index:
                    out[arm]["accuracy"] = float(by_version[version])
        return out

    def policy_yaml_obj(self) -> Any:
        import yaml

        from components.policy import policy_from_dict

        return policy_from_dict(yaml.safe_load(self.policy_yaml), source="demo policy")


@contextlib.contextmanager
def captured_output(path: Path) -> Iterator[None]:
    """Send this process's (and its children's) stdout and stderr to ``path`` for the block.

    kfp.local streams every task's executor input and logs to the terminal; the demo keeps
    them in a log file and shows progress instead. The terminal gets them back on error.
    """
    import sys

    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_demo(scenario: str, workdir: Path, bad_challenger: bool = False, seed: int = 0, quiet: bool = False) -> dict[str, Any]:
    """Run the demo and write ``summary.json`` and ``report.html`` into ``workdir``; return the summary."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from driftloop.dashboard import write_dashboard

    # rich writes to a duplicate of the terminal, so it keeps drawing while pipeline output is captured
    console = Console(file=os.fdopen(os.dup(2), "w", buffering=1), quiet=quiet, force_terminal=None)
    workdir.mkdir(parents=True, exist_ok=True)
    _quiet_libraries()
    # library chatter (Feast, MLflow, kfp.local task logs) goes to logs/demo.log; the
    # terminal shows the phases, one line per period and per canary step
    with captured_output(workdir / "logs" / "demo.log"), \
            Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                     transient=False) as progress:
        demo = Demo(scenario, workdir, bad_challenger=bad_challenger, seed=seed, say=progress.console.print, progress=progress)
        summary = demo.run()
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_dashboard(summary, workdir / "report.html")
    return summary


def _quiet_libraries() -> None:
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("mlflow", "alembic", "feast", "kfp", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

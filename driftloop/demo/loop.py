"""One demo run: generate data, train and serve a champion, replay periods, monitor, retrain, canary.

Everything runs on embedded defaults: scenario data as parquet, Feast with a file offline
store and SQLite online store, MLflow on SQLite, the train and monitor pipelines through
``kfp.local``, KServe ModelServer processes behind the local canary router, and the canary
(:func:`serving.canary.rollout.roll_out`, the entry point ``driftloop rollout`` and the
KFP step use too) reading the servers' own /metrics and the prediction log joined with labels.

Time is compressed: each replayed period's requests are sent as fast as the servers take
them (:class:`serving.traffic.ReplayTraffic`). Labels are never handed over with the
requests: they come from the label store (the scenario's label log, ingested with each
label's ``label_timestamp``) by the production path,
:func:`serving.canary.label_source.store_label_source`, which counts only the labels known
by its clock: the period's end for the monitor, and during a canary the controller's own
scaled clock (:class:`~serving.canary.label_source.ScaledClock`: one 1-second analysis
interval is ``plan.canary_interval`` of scenario time, replayed as a fixed number of
requests of the next period's traffic), so the run does not sleep and the policy's label
delay is honoured in scenario time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.errors import DriftloopError
from components.settings import Settings
from driftloop.demo.cohort import (
    cohort_figures,
    cohort_retrain_and_roll_out,
    retrain_lineage,
    review_after_promotion,
    rollout_requests,
)
from driftloop.demo.console import captured_output
from driftloop.demo.plan import demo_policy_yaml, plan_for
from driftloop.demo.reports import gate_reasons, period_figures, read_report
from serving.canary.label_source import ScaledClock, store_label_source


class Demo:
    """One demo run; :meth:`run` returns the summary dict also written to ``summary.json``."""

    def __init__(self, scenario: str, workdir: Path, bad_challenger: bool = False, seed: int = 0,
                 say: Callable[[str], None] = print, progress: Any = None) -> None:
        import yaml

        from components.policy import load_policy, policy_from_dict

        self.plan = plan_for(scenario, seed)
        self.policy = load_policy(scenario)
        self.workdir = workdir.resolve()
        self.settings = Settings(workdir=self.workdir)
        self.bad_challenger = bad_challenger
        self.say = say
        self.progress = progress
        self.policy_yaml = demo_policy_yaml(self.policy, self.plan)
        self.rollout_policy = policy_from_dict(yaml.safe_load(self.policy_yaml), source="demo policy")
        self.summary: dict[str, Any] = {"scenario": scenario, "workdir": str(self.workdir), "bad_challenger": bad_challenger,
                                        "policy_overrides": {"rollout": {"steps": list(self.plan.rollout_steps),
                                                                         "min_requests": self.plan.min_requests,
                                                                         "latency_max": self.plan.latency_max}},
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
        self.last_gate_reasons = gate_reasons(run)
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
        report = read_report(run)
        report["pipeline_seconds"] = round(run.seconds, 2)
        return report

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from serving.canary.local import LocalBackend
        from serving.traffic import ReplayTraffic

        started = time.perf_counter()
        data = self._phase("generate data", self.prepare_data)
        self._phase("apply and materialize features (Feast)", self.prepare_features)
        self._phase("train champion (train pipeline, kfp.local)", lambda: self.train(self.plan.train_end))
        # the train pipeline's register step applies the one rule: the first passing model is champion
        champion = self.registry().get(self.policy.model, "champion")
        if champion is None:
            raise DriftloopError("the first training run left no champion (its model failed the gate)",
                                 fix=f"read the gate's reasons in {self.workdir / 'logs' / 'pipelines.log'}")
        self.say(f"champion: {self.policy.model} v{champion.version} trained on data before {self.plan.train_end.date()}")
        log_dir = self.workdir / "prediction-log"
        policy_file = self.workdir / "policy.yaml"
        policy_file.write_text(self.policy_yaml)
        backend = LocalBackend(self.policy.model, f"models:/{self.policy.model}@champion", tracking_uri=self.settings.mlflow_tracking_uri,
                               log_dir=log_dir, work_dir=self.workdir / "servers", policy=str(policy_file), drain_seconds=0.5,
                               cohort_column=self.policy.segment_column)  # cohort specialists get routes (driftloop.demo.cohort)
        # labels travel with the entity, time, segment and label time the monitor joins on
        label_cols = [c for c in (self.policy.entity, self.policy.timestamp, self.policy.segment_column, "label_timestamp") if c]
        traffic = ReplayTraffic(backend.url, self.policy.model, data, self.policy.all_features, label=self.policy.label,
                                label_columns=label_cols)
        try:
            self._phase("start model server and router (KServe ModelServer)", lambda: backend.start(timeout=180))
            self._replay(data, backend, traffic, log_dir)
        finally:
            traffic.stop()
            backend.close()
        final = self.registry().get(self.policy.model, "champion")
        self.summary.update({"final_champion": str(final.version) if final else None, "requests": traffic.sent,
                             "failed_requests": traffic.failed, "duration_s": round(time.perf_counter() - started, 1),
                             "audit_trail": self.registry().history(self.policy.model)})
        return self.summary

    def _replay(self, data: pd.DataFrame, backend: Any, traffic: Any, log_dir: Path) -> None:

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
            sent = self._requests(traffic, ids)
            # the labels the store knows when the period closes; the others stay missing (NaN) in this window
            known = store_label_source(self.policy, self.settings, lambda sent=sent: sent, end.timestamp)()
            labels = sent.drop(columns=[c for c in (self.policy.label, "label_timestamp") if c in sent.columns]).merge(
                known, on="request_id", how="left")
            current = logged.drop(columns=[c for c in labels.columns if c in logged.columns and c != "request_id"]).merge(labels, on="request_id")
            current = current.rename(columns={"prediction": self.policy.prediction})
            report = self.monitor(period, current, version)
            decision = report.get("decision", {})
            metrics, drift, monitors = period_figures(report)
            name = period.strftime(self.plan.label)
            self.summary["periods"].append({"period": name, "start": period.isoformat(), "model_version": version, "rows": len(rows),
                                            "labelled": int(current[self.policy.label].notna().sum()), "metrics": metrics,
                                            "drift": drift, "monitors": monitors, "decision": decision,
                                            "cohorts": cohort_figures(current, self.policy.segment_column, self.policy.label, self.policy.prediction),
                                            "monitor_pipeline_s": report.get("pipeline_seconds")})
            action = decision.get("action", "none")
            self.say(f"{name}: v{version} served {len(rows)} rows; decision {action}"
                     + (f" ({decision.get('strategy')})" if action == "retrain" else "")
                     + "".join(f"\n    - {r}" for r in decision.get("reasons", [])))
            event = {"period": name, "action": action, "strategy": decision.get("strategy"), "window": decision.get("window"),
                     "cohort": decision.get("cohort"), "reasons": decision.get("reasons", [])}
            if action != "none":
                self.summary["events"].append(event)
            if action == "retrain":
                nxt = self.plan.periods[i + 1] if i + 1 < len(self.plan.periods) else period
                live = data[(ts >= nxt) & (ts < nxt + self.plan.period)]
                self._retrain_and_roll_out(decision, end, name, live, backend, traffic, log_dir, n_rollouts)
                event.update(retrain_lineage(self.registry(), self.policy.model, decision.get("idempotency_key") or ""))
                n_rollouts += 1
            if task is not None:
                self.progress.update(task, advance=1, description=f"replay periods ({name})")

    def _retrain_and_roll_out(self, decision: dict[str, Any], end: pd.Timestamp, name: str, live: pd.DataFrame,
                              backend: Any, traffic: Any, log_dir: Path, index: int) -> None:
        from serving.canary.rollout import roll_out
        from serving.prometheus import DirectSource

        if decision.get("strategy") == "cohort" and decision.get("cohort"):  # a specialist, canaried on its cohort only
            return cohort_retrain_and_roll_out(self, decision, end, name, live, backend, traffic, log_dir, index)
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
        bad = self.bad_challenger and not self.summary["rollouts"]  # only the first challenger that reaches a canary
        backend.challenger_args = ["--inject-error-rate", "0.3"] if bad else []
        clock, labels = self.canary_feed(live, index, log_dir, traffic, end)
        since = pd.Timestamp.now(tz="UTC")
        lines: list[str] = []

        def step_line(line: str) -> None:
            lines.append(line)
            self.say(f"  canary {line}")

        # The figures of each step (values against thresholds) are the controller's own checks in result.steps.
        result = roll_out(self.rollout_policy, self.settings, backend, challenger_uri=f"models:/{self.policy.model}/{challenger.version}",
                          labels=labels, log_dir=log_dir, registry=reg, metrics_source=DirectSource(backend.metrics_targets),
                          sleep=clock.sleep, clock=clock.time, on_step=step_line, actor="driftloop-demo")
        record = result.to_dict()
        record.update({"period": name, "from_version": str(champion.version) if champion else None,
                       "to_version": str(challenger.version), "bad_challenger": bad, "log": lines, "cohort": None,
                       "requests_by_cohort": rollout_requests(log_dir, self.policy.model, self.policy.segment_column, since,
                                                              record.get("champion_version"), str(challenger.version))})
        self.summary["rollouts"].append(record)
        if result.outcome == "promoted" and backend.cohorts:  # specialists the new global champion caught up with retire
            review_after_promotion(self, live, backend)

    def canary_feed(self, live: pd.DataFrame, index: int, log_dir: Path, traffic: Any, start: pd.Timestamp,
                    cohort: str | None = None) -> tuple[ScaledClock, Callable[[], pd.DataFrame]]:
        """The canary's scaled clock and its labels as the label store knows them by that clock.

        The clock's ``sleep`` is one analysis interval: a fixed number of requests of the next
        period's traffic seen by then. The labels callable reads the store for the requests
        sent so far (only ``cohort``'s requests when given: a cohort canary's checks).
        """
        from serving.canary.cohort import cohort_labels

        rng = np.random.default_rng(self.plan.seed + index)
        batches = iter(range(10_000))
        sent: list[str] = []
        live_ts = pd.to_datetime(live[self.policy.timestamp], utc=True) if len(live) and self.policy.timestamp in live else None

        def interval(since: pd.Timestamp, until: pd.Timestamp) -> None:
            n = self.plan.canary_requests * self.plan.canary_batch
            fresh = live[(live_ts >= since) & (live_ts < until)] if self.plan.canary_fresh_rows and live_ts is not None else live.iloc[0:0]
            if len(fresh):  # each row of the span once: a label goes to its user's latest prediction, so a resent row loses it
                sample = fresh.iloc[rng.permutation(len(fresh))[:n]]
            else:
                pool = live[live_ts < until] if live_ts is not None and (live_ts < until).any() else live
                sample = pool.iloc[rng.integers(0, len(pool), n)] if len(pool) else pool
            ids = traffic.send(sample, f"c{index}-{next(batches)}", self.plan.canary_batch)
            sent.extend(ids)
            self._wait_for_log(log_dir, ids)

        # one clock for the controller's step deadlines and for which labels the store knows
        clock = ScaledClock(start, scale=self.plan.canary_interval.total_seconds() / self.rollout_policy.rollout.interval_seconds,
                            on_advance=interval)

        def requests() -> pd.DataFrame:
            return self._requests(traffic, sent)

        wanted = cohort_labels(requests, self.policy.segment_column, cohort) if cohort is not None else requests
        return clock, store_label_source(self.policy, self.settings, wanted, clock.time)

    def _requests(self, traffic: Any, ids: list[str]) -> pd.DataFrame:
        """The requests ``ids`` with the entity and event time each carried (their labels come from the store)."""
        keys = traffic.labels()
        return keys[keys["request_id"].isin(set(ids))].drop(columns=[self.policy.label], errors="ignore")

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

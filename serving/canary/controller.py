"""The canary controller: step traffic to the challenger, analyse, promote or roll back.

:func:`run_rollout` checks everything it can before any traffic moves (the challenger
resolves and starts, labelled checks have labels, the metric source is online), then walks
``policy.rollout.steps``: set the traffic share, wait one interval, read both arms' metrics
(counters since the rollout started) and labelled outcomes (prediction log joined with
delayed labels), and ask :func:`serving.canary.analysis.analyse_step`. Promotion moves
100% to the challenger and swaps the registry aliases; rollback sends everything back to
the champion and records the reason in the registry. Clock and sleep are injectable.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from components.errors import ConfigError, DriftloopError, ServiceUnavailable
from components.model_uri import parse_model_uri
from serving.canary.analysis import (
    LABELLED_METRICS,
    ArmStats,
    Estimate,
    Evidence,
    Outcome,
    StepDecision,
    analyse_step,
    wait_for_labels,
)
from serving.canary.backends import TrafficBackend
from serving.canary.lease import Lease, acquire, retry_until
from serving.canary.state import RolloutConflict, state_store
from serving.prometheus import ArmSnapshot, MetricsSource, arm_snapshot

if TYPE_CHECKING:
    import pandas as pd

    from components.policy import Policy


class Registry(Protocol):
    """What the controller needs from the model registry (components.registry.ModelRegistry)."""

    def get(self, model: str, alias: str) -> Any: ...

    def resolve(self, model: str, ref: str | int) -> Any: ...

    def set_challenger(self, model: str, version: int, actor: str = ..., reason: str = ...) -> Any: ...

    def promote(self, model: str, version: int | None = None, actor: str = ..., reason: str = ...) -> Any: ...

    def rollback(self, model: str, actor: str = ..., reason: str = ..., version: int | None = None) -> Any: ...


@dataclass
class RolloutResult:
    """How the rollout ended, why, and every analysed step."""

    outcome: Literal["promoted", "rolled_back"]
    reason: str
    champion_version: str
    challenger_version: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    evidence: str = ""  # what the deciding step's labelled checks used (label_delay policies): labels | estimate | errors-latency

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def analysed_steps(self) -> list[dict[str, Any]]:
        """Steps decided on data: advanced, promoted or rolled back, or held on a failed check (not a "no data" hold).

        >>> no_data = {"decision": "hold", "checks": [{"passed": True}, {"passed": None}]}
        >>> failed = {"decision": "hold", "checks": [{"passed": False}]}
        >>> [s["decision"] for s in RolloutResult("rolled_back", "", "1", "2", [no_data, failed, {"decision": "rollback"}]).analysed_steps]
        ['hold', 'rollback']
        """
        return [s for s in self.steps if s["decision"] != "hold" or any(c.get("passed") is False for c in s.get("checks", []))]

    def to_markdown(self) -> str:
        """The outcome and one table row per analysed step.

        >>> print(RolloutResult("promoted", "all checks passed", "1", "2", [{"percent": 50, "decision": "advance", "reasons": []}]).to_markdown())
        # Canary: promoted
        <BLANKLINE>
        all checks passed
        <BLANKLINE>
        champion v1, challenger v2
        <BLANKLINE>
        | traffic | decision | reasons |
        | --- | --- | --- |
        | 50% | advance | - |
        <BLANKLINE>
        """
        lines = [f"# Canary: {self.outcome.replace('_', ' ')}", "", self.reason, "", f"champion v{self.champion_version}, challenger v{self.challenger_version}",
                 "", "| traffic | decision | reasons |", "| --- | --- | --- |"]
        lines += [f"| {s['percent']}% | {s['decision']}{' on ' + s['evidence'] if s.get('evidence') else ''} | {'; '.join(s['reasons']) or '-'} |"
                  for s in self.steps]
        return "\n".join(lines) + "\n"


def format_step(index: int, total: int, percent: int, decision: StepDecision) -> str:
    """One readable line per analysed step; with a label delay it names the evidence used.

    >>> format_step(0, 4, 10, StepDecision("hold", ["error_rate 0.034 > 0.01 (challenger, n=412)"]))
    'step 1/4 at 10%: hold - error_rate 0.034 > 0.01 (challenger, n=412)'
    >>> format_step(1, 4, 25, StepDecision("advance", ["all checks passed at 25%"], evidence="labels"))
    'step 2/4 at 25%: advance on labels - all checks passed at 25%'
    """
    on = f" on {decision.evidence}" if decision.evidence else ""
    return f"step {index + 1}/{total} at {percent}%: {decision.action}{on} - {'; '.join(decision.reasons[:3])}"


def labelled_outcomes(log_df: pd.DataFrame, labels: pd.DataFrame, label: str, metrics: set[str], segment: str | None) -> dict[str, dict[str, Outcome]]:
    """Per model version: accuracy (:func:`components.metrics.correct`) and ctr (label rate),
    overall and per segment, from the prediction log joined with delayed labels by request id.

    >>> import pandas as pd
    >>> log = pd.DataFrame({"request_id": ["a", "b", "c"], "model_version": ["1", "1", "2"], "prediction": [0.9, 0.2, 0.7], "seg": ["x", "y", "x"]})
    >>> out = labelled_outcomes(log, pd.DataFrame({"request_id": ["a", "b", "c"], "y": [1, 1, 0]}), "y", {"accuracy"}, "seg")
    >>> out["1"]["accuracy"], out["2"]["accuracy[x]"]
    (Outcome(n=2, successes=1), Outcome(n=1, successes=0))
    """
    from serving.canary.analysis import labelled_outcome_counts
    from serving.prediction_log import join_labels

    if label not in labels.columns:
        raise ConfigError(f"labels frame has no column {label!r}", fix="give request_id and the policy's label column")
    return labelled_outcome_counts(join_labels(log_df, labels[["request_id", label]]), label, metrics, segment)


def preflight(policy: Policy, registry: Registry, challenger_uri: str, labels: Any, log_dir: Any) -> tuple[str, str]:
    """Everything checkable before traffic moves; returns (champion, challenger) versions."""
    rollout = policy.rollout
    if not rollout.checks:
        raise ConfigError("rollout.checks is empty: nothing would guard the rollout", fix="add checks, e.g. {metric: error_rate, max: 0.01}")
    for i, check in enumerate(rollout.checks):
        if check.metric in LABELLED_METRICS and (labels is None or log_dir is None):
            raise ConfigError(f"rollout.checks[{i}] ({check.metric}) needs delayed labels joined to the prediction log",
                              fix="pass a labels source and the prediction log directory, or remove the check")
        if check.max is None and check.max_ratio is None and check.max_drop is None:
            raise ConfigError(f"rollout.checks[{i}] ({check.metric}) has no threshold", fix="set max, max_ratio or max_drop")
    champion = str(registry.resolve(policy.model, "champion").version)
    parse_model_uri(challenger_uri)  # a registry URI, not a path or a bare alias
    challenger = str(registry.resolve(policy.model, challenger_uri).version)
    if challenger == champion:
        raise ConfigError(f"challenger {challenger_uri} is the champion (version {champion})", fix="register a new version as the challenger")
    return champion, challenger


def run_rollout(
    policy: Policy | dict[str, Any],
    backend: TrafficBackend,
    metrics_source: MetricsSource,
    registry: Registry,
    *,
    challenger_uri: str | None = None,
    labels: Callable[[], pd.DataFrame] | None = None,
    log_dir: str | Path | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    max_no_data_holds: int = 5,
    on_step: Callable[[str], None] | None = None,
    actor: str = "driftloop-rollout",
    holder: str | None = None,
    lease_seconds: float | None = None,
    stale_after: float | None = None,
    retry_deadline: float = 300.0,
) -> RolloutResult:
    """Roll ``challenger_uri`` (default ``models:/<model>@challenger``) out by canary steps.

    Errors found before traffic moves raise ConfigError / ServiceUnavailable. The rollout
    then takes the service's lease (:func:`serving.canary.lease.acquire`: a live rollout
    of the same service is refused with RolloutConflict; a dead one's record is resumed,
    or rolled back when older than ``stale_after`` seconds) and writes its record before
    every traffic move. Once the challenger is deployed, any failure (an error, a bug,
    SIGTERM or SIGINT) sends the traffic back to the champion; the traffic moves and
    registry updates of the ending are retried with backoff for ``retry_deadline``
    seconds, after which ServiceUnavailable is raised with the record left for the next
    run. A DriftloopError ends as ``rolled_back``; anything else is re-raised after the
    rollback. ``lease_seconds`` defaults to 2 intervals + 30 s, ``stale_after`` to
    10 intervals + 10 minutes.
    """
    from components.policy import Policy, policy_from_dict

    if not isinstance(policy, Policy):
        policy = policy_from_dict(policy)
    rollout, model = policy.rollout, policy.model
    challenger_uri = challenger_uri or f"models:/{model}@challenger"
    champion_v, challenger_v = preflight(policy, registry, challenger_uri, labels, log_dir)
    say = on_step or (lambda line: None)
    store = state_store(backend)
    holder = holder or f"{actor}@{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"
    lease_s = lease_seconds if lease_seconds is not None else 2 * rollout.interval_seconds + 30
    stale_s = stale_after if stale_after is not None else 10 * rollout.interval_seconds + 600
    lease, how = acquire(store, model, champion_v, challenger_v, holder, clock=clock, lease_seconds=lease_s, stale_after=stale_s)
    if how == "rollback" and lease.record.phase == "promoting":
        # a dead controller had passed every check and was promoting: finish that decision, never undo it
        abandoned = lease.record
        say(f"taking over an abandoned promotion of version {abandoned.challenger}: finishing it ({abandoned.reason})")
        backend.deploy_challenger(f"models:/{model}/{abandoned.challenger}")
        backend.wait_ready()
        _settle(lease, backend, registry, "promoted", abandoned.reason, model, abandoned.challenger, actor, sleep, retry_deadline, say)
        if abandoned.challenger == challenger_v:
            return RolloutResult("promoted", abandoned.reason, abandoned.champion, abandoned.challenger, list(abandoned.steps))
        raise ConfigError(f"an abandoned rollout had decided to promote version {abandoned.challenger}; it is now the champion, "
                          f"so version {challenger_v} was not compared with it",
                          fix=f"run the rollout of version {challenger_v} again: it is then canaried against version {abandoned.challenger}")
    if how == "rollback":  # a dead controller's rollout: return its traffic to its champion first
        abandoned = lease.record
        say(f"taking over an abandoned rollout of version {abandoned.challenger}: rolling it back ({abandoned.reason})")
        _settle(lease, backend, registry, "rolled_back", abandoned.reason, model, abandoned.challenger, actor, sleep, retry_deadline, say)
        if abandoned.challenger == challenger_v:
            return RolloutResult("rolled_back", abandoned.reason, abandoned.champion, abandoned.challenger, list(abandoned.steps))
        lease, how = acquire(store, model, champion_v, challenger_v, holder, clock=clock, lease_seconds=lease_s, stale_after=stale_s)
    record = lease.record
    resumed = how == "resume"
    if resumed:
        say(f"resuming the rollout of version {challenger_v} from its record: {record.phase} at step {record.step + 1} ({record.percent}%)")
    result = RolloutResult("rolled_back", "", champion_v, challenger_v, list(record.steps))
    settled = False

    def finish(outcome: Literal["promoted", "rolled_back"], reason: str) -> RolloutResult:
        nonlocal settled
        settled = True
        result.outcome, result.reason = outcome, reason
        lease.record.steps = result.steps
        _settle(lease, backend, registry, outcome, reason, model, challenger_v, actor, sleep, retry_deadline, say)
        say(f"{outcome.replace('_', ' ')}: {reason}")
        return result

    metrics: set[str] = {str(c.metric) for c in rollout.checks if c.metric in LABELLED_METRICS}
    step, failed, no_data_holds = record.step, record.failed_checks, 0
    waiter = _LabelWait(policy, registry, champion_v, challenger_v, clock, say) if rollout.label_wait_seconds else None
    with _interrupts():
        try:
            backend.deploy_challenger(f"models:/{model}/{challenger_v}")
            backend.wait_ready()
            if record.phase in ("promoting", "rolling_back"):  # the dead controller had decided: finish its decision
                return finish("promoted" if record.phase == "promoting" else "rolled_back", record.reason or "resumed")
            if not _wait_online(metrics_source, clock, sleep):
                # nothing was analysed: take the challenger out of service but leave its registry alias alone
                settled = True
                retry_until(backend.rollback, "the rollback traffic move", deadline_seconds=retry_deadline, sleep=sleep, on_retry=say)
                lease.write(phase="rolled_back", percent=0, reason="the metrics source is offline")
                raise ServiceUnavailable(f"the metrics source {_describe(metrics_source)} is offline", fix="start Prometheus or the model servers' /metrics, or fix DRIFTLOOP_PROMETHEUS_URL")
            # the log's times are the servers' wall time, whatever clock the analysis runs on
            started = datetime.fromtimestamp(time.time() - max(clock() - record.started_at, 0.0), UTC)
            since = started.timestamp()  # counters since the rollout began, restarts included (PrometheusSource)
            base = {v: arm_snapshot(metrics_source, model, v, since) for v in (champion_v, challenger_v)}
            lease.write(step=step, percent=rollout.steps[step])  # the record first: a crash after the move knows about it
            backend.set_traffic(rollout.steps[step])
            step_base = {v: arm_snapshot(metrics_source, model, v, since) for v in base}
            step_started = clock()
            while True:
                sleep(rollout.interval_seconds)
                now = {v: arm_snapshot(metrics_source, model, v, since) for v in base}
                outcomes: dict[str, dict[str, Outcome]] = {}
                estimates: dict[str, dict[str, Estimate]] = {}
                if metrics and labels is not None and log_dir is not None:
                    from serving.prediction_log import read_log

                    log_df, labels_df = read_log(log_dir, model, start=started), labels()
                    outcomes = labelled_outcomes(log_df, labels_df, policy.label, metrics, policy.segment_column)
                    if waiter is not None:
                        estimates = waiter.observe(log_df, labels_df)
                arms = [_arm(v, now[v].minus(base[v]), now[v].minus(step_base[v]), outcomes.get(v, {}), estimates.get(v, {}))
                        for v in (champion_v, challenger_v)]
                if waiter is None:
                    decision = analyse_step(rollout, arms[0], arms[1], step, failed_before=failed)
                else:
                    decision = waiter.decide(analyse_step(rollout, arms[0], arms[1], step, failed_before=failed, evidence=waiter.evidence(estimates)))
                percent = rollout.steps[step]
                result.steps.append({"percent": percent, "started_at": datetime.fromtimestamp(step_started, UTC).isoformat(),
                                     "analysed_at": datetime.fromtimestamp(clock(), UTC).isoformat(),
                                     "decision": decision.action, "reasons": decision.reasons, "checks": [c.to_dict() for c in decision.checks],
                                     **({"evidence": decision.evidence, "labels": waiter.coverage_dict()} if waiter else {})})
                result.evidence = decision.evidence or ""
                say(format_step(step, len(rollout.steps), percent, decision))
                failed += decision.failed
                lease.write(last_analysed_at=clock(), failed_checks=failed, steps=result.steps)  # also keeps the lease fresh
                if decision.action == "rollback":
                    return finish("rolled_back", decision.reasons[0] if decision.reasons else "analysis failed")
                if decision.action == "promote":
                    return finish("promoted", f"all checks passed at every step {rollout.steps}")
                if decision.action == "hold" and waiter is not None and waiter.waiting:
                    no_data_holds = 0  # waiting for labels within the deadline is not a lack of traffic
                    continue
                if decision.action == "hold":
                    no_data_holds = no_data_holds + 1 if decision.failed == 0 else 0
                    if no_data_holds > max_no_data_holds:
                        return finish("rolled_back", f"no data for {no_data_holds} intervals at {percent}%: {decision.reasons[0]}")
                    continue
                no_data_holds = 0
                step += 1
                lease.write(step=step, percent=rollout.steps[step])
                backend.set_traffic(rollout.steps[step])
                step_base, step_started = now, clock()
                if waiter is not None:
                    waiter.next_step()
        except RolloutConflict:
            raise  # another controller owns the service now: its traffic is not ours to move
        except RolloutInterrupted as exc:
            if not settled:
                finish("rolled_back", f"aborted at step {step + 1}: {exc.problem}")
            raise RolloutInterrupted(f"{exc.problem} at step {step + 1}; traffic is back on the champion (version {champion_v})",
                                     fix="rerun the rollout when ready") from None
        except DriftloopError as exc:
            if settled:
                raise
            return finish("rolled_back", f"aborted at step {step + 1}: {exc}")
        except BaseException as exc:
            if not settled:  # a bug or an unexpected error: roll back, then let it surface
                finish("rolled_back", f"aborted at step {step + 1} by {type(exc).__name__}: {exc}")
            raise


def _settle(lease: Lease, backend: TrafficBackend, registry: Registry, outcome: str, reason: str, model: str, challenger_v: str,
            actor: str, sleep: Callable[[float], None], deadline: float, say: Callable[[str], None]) -> None:
    """End a rollout: record the decision, move traffic, then the registry, then record the end (each step retried)."""
    def retry(fn: Callable[[], Any], what: str) -> Any:
        # the deadline is wall time even when the analysis clock is simulated
        return retry_until(fn, what, deadline_seconds=deadline, sleep=sleep, on_retry=say)

    if outcome == "promoted":
        retry(lambda: lease.write(phase="promoting", reason=reason), "recording the promotion")
        retry(backend.promote, "the promotion traffic move")
        current = registry.get(model, "champion")
        if current is None or str(current.version) != challenger_v:
            retry(lambda: registry.promote(model, int(challenger_v), actor=actor, reason=f"canary rollout: {reason}"), "the registry promotion")
        retry(lambda: lease.write(phase="promoted", percent=100), "recording the end of the promotion")
        return
    try:  # the record is best effort here: an API that refuses it must not keep traffic on a bad challenger
        retry_until(lambda: lease.write(phase="rolling_back", reason=reason), "recording the rollback", deadline_seconds=min(deadline, 10.0),
                    sleep=sleep, on_retry=say)
    except ServiceUnavailable as exc:
        say(f"could not record the rollback before moving traffic: {exc}")
    retry(backend.rollback, "the rollback traffic move")
    retry(lambda: registry.rollback(model, actor=actor, reason=f"canary rollout of version {challenger_v}: {reason}", version=int(challenger_v)),
          "the registry rollback")
    retry(lambda: lease.write(phase="rolled_back", percent=0), "recording the end of the rollback")


class RolloutInterrupted(DriftloopError):
    """SIGTERM or SIGINT arrived during a rollout (raised once the traffic is back on the champion)."""


@contextlib.contextmanager
def _interrupts() -> Iterator[None]:
    """Turn the first SIGTERM/SIGINT into RolloutInterrupted (later ones are ignored while rolling back)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if fired:
            return
        fired.append(signum)
        raise RolloutInterrupted(f"interrupted by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _wait_online(source: MetricsSource, clock: Callable[[], float], sleep: Callable[[float], None], timeout: float = 15.0) -> bool:
    deadline = clock() + timeout
    while not source.is_online():
        if clock() >= deadline:
            return False
        sleep(0.5)
    return True


def _describe(source: MetricsSource) -> str:
    return str(getattr(source, "url", None) or getattr(source, "targets", None) or type(source).__name__)


def _arm(version: str, cum: ArmSnapshot, step: ArmSnapshot, outcomes: dict[str, Outcome], estimates: dict[str, Estimate]) -> ArmStats:
    return ArmStats(
        version=version, requests=int(cum.requests), errors=int(cum.errors), step_requests=int(step.requests),
        latency_p95=cum.latency_quantile(0.95), latency_p99=cum.latency_quantile(0.99),
        prediction_counts=cum.prediction_counts(), outcomes=outcomes, estimates=estimates,
    )


class _LabelWait:
    """A step's wait for its labels (``rollout.label_delay``): its cohort, coverage, deadline and evidence.

    The cohort is the step's predictions logged by its first analysis at which the challenger
    has served ``min_labelled / labelled_fraction`` of them; the deadline is that analysis
    plus ``rollout.label_wait_seconds`` on the controller's clock.
    """

    def __init__(self, policy: Policy, registry: Registry, champion: str, challenger: str, clock: Callable[[], float],
                 say: Callable[[str], None]) -> None:
        from components.policy import DEFAULT_LABELLED_FRACTION
        from serving.canary.evidence import fit_arm_estimator

        r = policy.rollout
        self.policy, self.challenger, self.clock = policy, challenger, clock
        self.fraction = r.labelled_fraction or DEFAULT_LABELLED_FRACTION
        self.min_labelled = r.min_labelled or r.min_requests
        self.wait = float(r.label_wait_seconds or 0.0)
        self.estimators = {v: fit_arm_estimator(registry, policy, v, say) for v in (champion, challenger)}
        self.seen: set[str] = set()  # request ids logged before the step started
        self.cohort: Any = None
        self.deadline: float | None = None
        self.coverage: Any = None
        self.waiting = False

    def observe(self, log_df: pd.DataFrame, labels_df: pd.DataFrame) -> dict[str, dict[str, Estimate]]:
        """Update the step's cohort and label coverage from this analysis' log and labels; return each arm's estimates."""
        from serving.canary.evidence import arm_estimates, label_coverage

        cohort = self.cohort
        if cohort is None:  # still filling: the step's predictions so far
            cohort = log_df[~log_df["request_id"].astype(str).isin(self.seen)][["request_id", "model_version"]]
            if int((cohort["model_version"].astype(str) == self.challenger).sum()) >= math.ceil(self.min_labelled / self.fraction):
                self.cohort, self.deadline = cohort, self.clock() + self.wait  # enough challenger predictions: fixed, the deadline runs
        self._last_ids = set(log_df["request_id"].astype(str))
        self.coverage = label_coverage(cohort, labels_df, self.policy.label, self.challenger, self.fraction, self.min_labelled)
        return arm_estimates(log_df, self.estimators)

    def evidence(self, estimates: dict[str, dict[str, Estimate]]) -> Evidence:
        if self.coverage is not None and self.coverage.enough:
            return "labels"
        return "estimate" if all(v in estimates for v in self.estimators) else "errors-latency"

    def decide(self, decision: StepDecision) -> StepDecision:
        from serving.canary.analysis import LabelCoverage
        from serving.canary.evidence import format_wait

        coverage = self.coverage or LabelCoverage(0, 0, 0, self.fraction, self.min_labelled)
        if self.deadline is None:  # the cohort is still filling: not enough challenger traffic yet (a no-data hold)
            held = wait_for_labels(decision, coverage, False, "")
            self.waiting = False
            if held is not decision:
                need = math.ceil(self.min_labelled / self.fraction)
                return StepDecision("hold", [f"no data: the step's cohort needs {need} challenger predictions before its labels are awaited",
                                             *held.reasons], held.checks, 0, held.evidence)
            return held
        left = self.deadline - self.clock()
        held = wait_for_labels(decision, coverage, left <= 0, format_wait(left))
        self.waiting = held is not decision
        return held

    def coverage_dict(self) -> dict[str, Any]:
        c = self.coverage
        return {} if c is None else {"predictions": c.predictions, "labelled": c.labelled, "challenger_labelled": c.challenger_labelled,
                                     "needed_fraction": c.fraction, "needed_challenger": c.min_labelled, "enough": c.enough}

    def next_step(self) -> None:
        self.seen = getattr(self, "_last_ids", set())
        self.cohort, self.deadline, self.coverage, self.waiting = None, None, None, False

"""One canary analysis step: compare the challenger's live metrics with the champion's.

:func:`analyse_step` is a pure function of the policy's ``rollout`` section and the two
arms' statistics (flagger's ``runMetricChecks`` idea). It returns advance, hold, rollback or
promote with one readable reason per check. "No data" (fewer than ``min_requests`` per arm
in the step) halts; it never passes.

The labelled checks (accuracy, ctr) use an always-valid confidence sequence (a normal-mixture
boundary for bounded observations, Howard et al. 2021), so looking at every step does not
inflate the false-rollback rate: the challenger is rolled back only when the whole sequence
says its rate is lower than the champion's by more than ``max_drop``.

>>> from components.policy import Rollout
>>> r = Rollout(steps=[50, 100], min_requests=20, max_failed_checks=0)
>>> champ = ArmStats("1", requests=400, step_requests=200, errors=0, latency_p95=0.004)
>>> bad = ArmStats("2", requests=400, step_requests=200, errors=30, latency_p95=0.004)
>>> d = analyse_step(r, champ, bad, step=0)
>>> d.action, d.reasons[0]
('rollback', 'error_rate 0.075 > 0.01 (challenger, n=400)')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from components.metrics import correct
from components.monitor.psi import psi_from_counts

Action = Literal["advance", "hold", "rollback", "promote"]
# What a step's labelled checks were decided on: the labels themselves, the label-free CBPE
# estimate (components.monitor.estimated) of each arm, or nothing but error rate and latency.
Evidence = Literal["labels", "estimate", "errors-latency"]
LABELLED_METRICS = ("accuracy", "ctr")
ESTIMATED_METRICS = ("accuracy",)  # what CBPE can stand in for before the labels arrive
# Latency differences below this are within histogram resolution and scheduler noise.
LATENCY_FLOOR_SECONDS = 0.005
# The confidence sequence is tightest around rho / 0.25 observations per arm.
CS_RHO = 25.0
# PSI (components.monitor.psi) needs about ten predictions per histogram bucket in each arm
# before it means anything.
PSI_MIN_PER_BUCKET = 10


@dataclass(frozen=True)
class Outcome:
    """Labelled requests of one arm: ``n`` labelled, ``successes`` correct (accuracy) or clicked (ctr)."""

    n: int = 0
    successes: int = 0

    @property
    def rate(self) -> float:
        return self.successes / self.n if self.n else float("nan")


@dataclass(frozen=True)
class ArmStats:
    """One arm's metrics since the rollout started (``step_requests``: in the current step).

    ``outcomes`` maps ``"accuracy"`` / ``"ctr"`` and per segment ``"accuracy[subprime]"``
    to labelled counts. ``prediction_counts`` are counts per prediction bucket.
    """

    version: str
    requests: int = 0
    errors: int = 0
    step_requests: int = 0
    latency_p95: float | None = None
    latency_p99: float | None = None
    prediction_counts: Sequence[float] = ()
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)
    estimates: Mapping[str, Estimate] = field(default_factory=dict)


@dataclass(frozen=True)
class Estimate:
    """A label-free (CBPE) estimate of one arm's metric: ``value`` +- ``half_width`` over ``n`` predictions."""

    value: float
    half_width: float
    n: int
    trusted: bool = True  # the calibration on the arm's reference was good enough


@dataclass(frozen=True)
class LabelCoverage:
    """How many of a step's predictions (its first interval's) have labels so far.

    >>> c = LabelCoverage(predictions=200, labelled=170, challenger_labelled=20, fraction=0.8, min_labelled=12)
    >>> c.share, c.enough
    (0.85, True)
    """

    predictions: int
    labelled: int
    challenger_labelled: int
    fraction: float  # the policy's rollout.labelled_fraction
    min_labelled: int  # of the challenger's predictions

    @property
    def share(self) -> float:
        return self.labelled / self.predictions if self.predictions else 0.0

    @property
    def enough(self) -> bool:
        return self.predictions > 0 and self.share >= self.fraction and self.challenger_labelled >= self.min_labelled

    def describe(self) -> str:
        return (f"{self.labelled}/{self.predictions} ({self.share:.0%}) of the step's predictions labelled, "
                f"challenger {self.challenger_labelled}; need {self.fraction:.0%} and {self.min_labelled}")


@dataclass(frozen=True)
class CheckResult:
    """One check: ``passed`` is None when there was no data to decide."""

    metric: str
    value: float | None
    threshold: float | None
    passed: bool | None
    reason: str
    decisive: bool = False  # a sequential test crossed its boundary: roll back at once

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "threshold": self.threshold,
                "passed": self.passed, "reason": self.reason, "decisive": self.decisive}


@dataclass(frozen=True)
class StepDecision:
    """What to do after a step, why, and the checks behind it."""

    action: Action
    reasons: list[str]
    checks: list[CheckResult] = field(default_factory=list)
    failed: int = 0  # failed checks in this analysis
    evidence: Evidence | None = None  # set when the policy waits for labels (rollout.label_delay)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "reasons": self.reasons, "failed": self.failed, "evidence": self.evidence,
                "checks": [c.to_dict() for c in self.checks]}


def labelled_outcome_counts(joined: Any, label: str, metrics: Any, segment: str | None = None) -> dict[str, dict[str, Outcome]]:
    """Per model version, the labelled :class:`Outcome` of each metric in ``metrics``, overall
    and per ``segment`` value (``"accuracy[subprime]"``).

    ``joined`` is the prediction log joined with labels (``model_version``, ``prediction``,
    ``label``). A prediction is correct by :func:`components.metrics.correct`, the one
    decision rule; ctr counts positive labels.

    >>> import pandas as pd
    >>> joined = pd.DataFrame({"model_version": ["1", "1", "2"], "prediction": [0.9, 0.2, 0.7], "y": [1, 1, 0], "seg": ["x", "y", "x"]})
    >>> out = labelled_outcome_counts(joined, "y", {"accuracy"}, "seg")
    >>> out["1"]["accuracy"], out["2"]["accuracy[x]"]
    (Outcome(n=2, successes=1), Outcome(n=1, successes=0))
    """
    import pandas as pd

    out: dict[str, dict[str, Outcome]] = {}
    for version, group in joined.groupby("model_version"):
        y = group[label].astype(int)
        hits = {"accuracy": pd.Series(correct(y, group["prediction"]), index=group.index), "ctr": y == 1}
        arm: dict[str, Outcome] = {}
        for metric in metrics:
            arm[metric] = Outcome(len(group), int(hits[metric].sum()))
            if segment and segment in group.columns:
                for seg, idx in group.groupby(segment).groups.items():
                    arm[f"{metric}[{seg}]"] = Outcome(len(idx), int(hits[metric].loc[idx].sum()))
        out[str(version)] = arm
    return out


def rate_confidence_sequence(successes: int, n: int, alpha: float, rho: float = CS_RHO) -> tuple[float, float]:
    """Always-valid (1 - alpha) bounds on a Bernoulli rate after ``n`` observations.

    Normal-mixture boundary for 1/2-sub-Gaussian increments: with V = n/4,
    |S_n - n p| <= sqrt((V + rho) (2 log(1/alpha) + log((V + rho)/rho))) for all n at once
    with probability >= 1 - alpha.

    >>> lo, hi = rate_confidence_sequence(80, 100, 0.05)
    >>> round(lo, 3), round(hi, 3)
    (0.6, 1.0)
    """
    if n <= 0:
        return 0.0, 1.0
    v = 0.25 * n
    radius = math.sqrt((v + rho) * (2 * math.log(1 / alpha) + math.log((v + rho) / rho))) / n
    p = successes / n
    return max(0.0, p - radius), min(1.0, p + radius)


def drop_confidence_sequence(champion: Outcome, challenger: Outcome, alpha: float) -> tuple[float, float]:
    """Always-valid bounds on champion rate - challenger rate (alpha split over the two arms).

    >>> lo, hi = drop_confidence_sequence(Outcome(300, 270), Outcome(300, 120), 0.05)
    >>> lo > 0.2
    True
    """
    c_lo, c_hi = rate_confidence_sequence(champion.successes, champion.n, alpha / 2)
    k_lo, k_hi = rate_confidence_sequence(challenger.successes, challenger.n, alpha / 2)
    return c_lo - k_hi, c_hi - k_lo


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _check_error_rate(check: Any, champ: ArmStats, chal: ArmStats) -> CheckResult:
    if chal.requests == 0:
        return CheckResult("error_rate", None, check.max, None, "error_rate: no challenger requests yet")
    rate = chal.errors / chal.requests
    if check.max is not None and rate > check.max:
        return CheckResult("error_rate", rate, check.max, False, f"error_rate {_fmt(rate)} > {_fmt(check.max)} (challenger, n={chal.requests})")
    if check.max_ratio is not None and champ.requests:
        base = champ.errors / champ.requests
        limit = max(base * check.max_ratio, 1.0 / champ.requests)
        if rate > limit:
            return CheckResult("error_rate", rate, limit, False, f"error_rate {_fmt(rate)} > {_fmt(check.max_ratio)} x champion {_fmt(base)} (n={chal.requests})")
    return CheckResult("error_rate", rate, check.max, True, f"error_rate {_fmt(rate)} ok (challenger, n={chal.requests})")


def _check_latency(check: Any, champ: ArmStats, chal: ArmStats) -> CheckResult:
    name = check.metric
    value: float | None = getattr(chal, name)
    base: float | None = getattr(champ, name)
    if value is None:
        return CheckResult(name, None, None, None, f"{name}: no challenger latency yet")
    ms = value * 1000
    if check.max is not None and value > check.max:
        return CheckResult(name, value, check.max, False, f"{name} {ms:.1f}ms > {check.max * 1000:.1f}ms (challenger)")
    if check.max_ratio is not None:
        if base is None:
            return CheckResult(name, value, None, None, f"{name}: no champion latency to compare with")
        limit = max(base * check.max_ratio, base + LATENCY_FLOOR_SECONDS)
        if value > limit:
            return CheckResult(name, value, limit, False, f"{name} {ms:.1f}ms > {check.max_ratio} x champion {base * 1000:.1f}ms")
        return CheckResult(name, value, limit, True, f"{name} {ms:.1f}ms ok (champion {base * 1000:.1f}ms)")
    return CheckResult(name, value, check.max, True, f"{name} {ms:.1f}ms ok")


def _check_shift(check: Any, champ: ArmStats, chal: ArmStats) -> CheckResult:
    n1, n2 = int(sum(champ.prediction_counts)), int(sum(chal.prediction_counts))
    need = PSI_MIN_PER_BUCKET * max(len(champ.prediction_counts), 1)
    if min(n1, n2) < need:  # PSI on a handful of predictions is noise: no data, not a pass
        return CheckResult("prediction_shift", None, check.max, None, f"prediction_shift: {n2} challenger / {n1} champion predictions < {need}")
    limit = check.max if check.max is not None else 0.25
    # the monitors' PSI: the limit is raised to the noise floor of these sample sizes
    r = psi_from_counts(champ.prediction_counts, chal.prediction_counts, warn=limit, drift=limit)
    value, threshold = float(r.statistic or 0.0), float(r.threshold or limit)
    floor = f" (noise floor {_fmt(threshold)} > max {_fmt(limit)})" if threshold > limit else ""
    if r.drift:
        return CheckResult("prediction_shift", value, threshold, False, f"prediction_shift PSI {_fmt(value)} > {_fmt(threshold)}{floor} (n={n2} vs {n1})")
    return CheckResult("prediction_shift", value, threshold, True, f"prediction_shift PSI {_fmt(value)} ok{floor} (n={n2} vs {n1})")


def _check_labelled(check: Any, champ: ArmStats, chal: ArmStats, alpha: float, min_n: int) -> list[CheckResult]:
    name = check.metric
    max_drop = check.max_drop if check.max_drop is not None else 0.0
    keys = [name] + sorted(k for k in chal.outcomes if k.startswith(f"{name}[") and k in champ.outcomes)
    seg_keys = keys[1:]
    results = []
    for key in keys:
        a, b = champ.outcomes.get(key, Outcome()), chal.outcomes.get(key, Outcome())
        if a.n < min_n or b.n < min_n:
            if key == name:
                results.append(CheckResult(name, None, max_drop, None, f"{name}: labelled {b.n} challenger / {a.n} champion < min_requests {min_n}"))
            continue  # a small segment cannot be judged yet; the overall check still runs
        level = alpha if key == name else alpha / max(1, len(seg_keys))  # Bonferroni over segments
        lo, hi = drop_confidence_sequence(a, b, level)
        drop = a.rate - b.rate
        text = f"{key} drop {_fmt(drop)} (champion {_fmt(a.rate)} n={a.n}, challenger {_fmt(b.rate)} n={b.n}; {1 - level:.0%} CS [{_fmt(lo)}, {_fmt(hi)}])"
        if lo > max_drop:
            results.append(CheckResult(key, drop, max_drop, False, f"{text} > max_drop {_fmt(max_drop)}", decisive=True))
        elif key == name:
            results.append(CheckResult(key, drop, max_drop, True, f"{text} ok"))
    return results


def _check_estimated(check: Any, champ: ArmStats, chal: ArmStats) -> CheckResult:
    """A labelled check decided on the arms' CBPE estimates: fails only when the estimated drop
    exceeds ``max_drop`` by more than both bands together (never decisive: estimates can be wrong)."""
    name = check.metric
    max_drop = check.max_drop if check.max_drop is not None else 0.0
    a, b = champ.estimates.get(name), chal.estimates.get(name)
    if a is None or b is None:
        return CheckResult(name, None, max_drop, None, f"{name}: no estimate (challenger {b is not None}, champion {a is not None})")
    drop, half = a.value - b.value, math.hypot(a.half_width, b.half_width)
    trust = "" if a.trusted and b.trusted else "; calibration flagged untrusted"
    text = (f"{name} estimated drop {_fmt(drop)} +- {_fmt(half)} (CBPE: champion {_fmt(a.value)} n={a.n}, "
            f"challenger {_fmt(b.value)} n={b.n}{trust})")
    if drop - half > max_drop:
        return CheckResult(name, drop, max_drop, False, f"{text} > max_drop {_fmt(max_drop)}")
    return CheckResult(name, drop, max_drop, True, f"{text} ok")


def analyse_step(rollout: Any, champion: ArmStats, challenger: ArmStats, step: int, failed_before: int = 0,
                 evidence: Evidence | None = None) -> StepDecision:
    """Decide after analysis step ``step`` (an index into ``rollout.steps``).

    Rolls back when a sequential test is conclusive or when failed checks so far exceed
    ``rollout.max_failed_checks``; holds on a tolerated failure or on no data; promotes after
    the last step; advances otherwise.

    ``evidence`` (None = as always: labels) says what the labelled checks are decided on:
    ``"labels"``; ``"estimate"``: each arm's CBPE estimate (:func:`_check_estimated`; ctr,
    which CBPE cannot estimate, is left out); ``"errors-latency"``: the labelled checks are
    left out. The decision carries ``evidence``; whether a step may advance without labels is
    :func:`wait_for_labels`'s call.
    """
    if not 0 <= step < len(rollout.steps):
        raise ValueError(f"step {step} is outside rollout.steps {rollout.steps}")
    percent = rollout.steps[step]
    checks: list[CheckResult] = []
    for check in rollout.checks:
        if check.metric == "error_rate":
            checks.append(_check_error_rate(check, champion, challenger))
        elif check.metric in ("latency_p95", "latency_p99"):
            checks.append(_check_latency(check, champion, challenger))
        elif check.metric == "prediction_shift":
            checks.append(_check_shift(check, champion, challenger))
        elif check.metric in LABELLED_METRICS and evidence in (None, "labels"):
            checks.extend(_check_labelled(check, champion, challenger, rollout.alpha, rollout.min_requests))
        elif check.metric in LABELLED_METRICS:
            if evidence == "estimate" and check.metric in ESTIMATED_METRICS:
                checks.append(_check_estimated(check, champion, challenger))
        else:  # the policy schema forbids this; keep the pure function total anyway
            raise ValueError(f"unknown rollout metric {check.metric!r}")
    no_data = []
    if challenger.step_requests < rollout.min_requests:
        no_data.append(f"no data: challenger served {challenger.step_requests} < min_requests {rollout.min_requests} at {percent}%")
    if percent < 100 and champion.step_requests < rollout.min_requests:
        no_data.append(f"no data: champion served {champion.step_requests} < min_requests {rollout.min_requests} at {percent}%")
    no_data += [c.reason for c in checks if c.passed is None]
    failed = [c for c in checks if c.passed is False]
    reasons = [c.reason for c in failed]
    if any(c.decisive for c in failed):
        return StepDecision("rollback", reasons, checks, len(failed), evidence)
    if failed and failed_before + len(failed) > rollout.max_failed_checks:
        return StepDecision("rollback", reasons, checks, len(failed), evidence)
    if failed:
        return StepDecision("hold", [*reasons, f"failed checks {failed_before + len(failed)} <= max_failed_checks {rollout.max_failed_checks}"],
                            checks, len(failed), evidence)
    if no_data:
        return StepDecision("hold", no_data, checks, 0, evidence)
    passed = [c.reason for c in checks]
    on = "" if evidence in (None, "labels") else f" on the {evidence} evidence"
    action: Action = "promote" if step == len(rollout.steps) - 1 else "advance"
    return StepDecision(action, [f"all checks passed at {percent}%{on}", *passed], checks, 0, evidence)


def wait_for_labels(decision: StepDecision, coverage: LabelCoverage, deadline_passed: bool, left: str = "") -> StepDecision:
    """Hold a step that would advance or promote without its labels, until they arrive or the deadline passes.

    A rollback is never held back; a step whose labels are in, or whose deadline has passed,
    keeps its decision (then decided on the estimate or on errors and latency alone, as its
    ``evidence`` says).

    >>> d = StepDecision("advance", ["all checks passed at 10% on the estimate evidence"], evidence="estimate")
    >>> c = LabelCoverage(predictions=300, labelled=30, challenger_labelled=3, fraction=0.8, min_labelled=12)
    >>> w = wait_for_labels(d, c, deadline_passed=False, left="5h 30m")
    >>> w.action, w.reasons[0]
    ('hold', "waiting for labels: 30/300 (10%) of the step's predictions labelled, challenger 3; need 80% and 12 (deadline in 5h 30m)")
    >>> wait_for_labels(d, c, deadline_passed=True).action
    'advance'
    """
    if decision.action not in ("advance", "promote") or coverage.enough or deadline_passed:
        return decision
    deadline = f" (deadline in {left})" if left else ""
    return StepDecision("hold", [f"waiting for labels: {coverage.describe()}{deadline}", *decision.reasons[1:]], decision.checks, 0, decision.evidence)

"""analyse_step: each check's verdict, no-data halts, failed-check budget, and the
sequential accuracy test's detection power and false-alarm rate under continuous peeking."""

from __future__ import annotations

import numpy as np
import pytest

from components.monitor.psi import psi_value
from components.policy import Rollout, RolloutCheck
from serving.canary.analysis import ArmStats, Outcome, analyse_step, drop_confidence_sequence

pytestmark = pytest.mark.unit

CHECKS = [RolloutCheck(metric="error_rate", max=0.01), RolloutCheck(metric="latency_p95", max_ratio=1.5),
          RolloutCheck(metric="prediction_shift", max=0.25), RolloutCheck(metric="accuracy", max_drop=0.02)]
ROLLOUT = Rollout(steps=[10, 50, 100], min_requests=50, max_failed_checks=0, checks=CHECKS)
HIST = (10, 20, 30, 40, 50, 50, 40, 30, 20, 10)


def arm(version: str = "1", **kw: object) -> ArmStats:
    base = dict(requests=500, step_requests=200, errors=0, latency_p95=0.004, latency_p99=0.006,
                prediction_counts=HIST, outcomes={"accuracy": Outcome(300, 255)})
    base.update(kw)
    return ArmStats(version, **base)  # type: ignore[arg-type]


def test_equal_arms_advance_then_promote_at_last_step() -> None:
    assert analyse_step(ROLLOUT, arm(), arm("2"), step=0).action == "advance"
    assert analyse_step(ROLLOUT, arm(), arm("2"), step=1).action == "advance"
    # at 100% the champion serves nothing new; its earlier record is the baseline
    d = analyse_step(ROLLOUT, arm(step_requests=0), arm("2"), step=2)
    assert d.action == "promote" and d.reasons[0] == "all checks passed at 100%"


def test_error_rate_over_max_rolls_back_with_reason() -> None:
    d = analyse_step(ROLLOUT, arm(), arm("2", errors=17, requests=412), step=0)
    assert d.action == "rollback"
    assert d.reasons == ["error_rate 0.0413 > 0.01 (challenger, n=412)"]
    assert analyse_step(ROLLOUT, arm(), arm("2", errors=4, requests=412), step=0).action == "advance"


def test_latency_ratio_and_floor() -> None:
    slow = arm("2", latency_p95=0.25)
    d = analyse_step(ROLLOUT, arm(), slow, step=0)
    assert d.action == "rollback" and d.reasons[0].startswith("latency_p95 250.0ms > 1.5 x champion 4.0ms")
    # 2 ms over a 4 ms champion is 1.5x but inside the 5 ms resolution floor: not a failure
    assert analyse_step(ROLLOUT, arm(), arm("2", latency_p95=0.0065), step=0).action == "advance"


def test_prediction_shift_psi() -> None:
    shifted = tuple(reversed((1, 1, 1, 1, 1, 5, 20, 60, 120, 200)))
    d = analyse_step(ROLLOUT, arm(), arm("2", prediction_counts=shifted), step=0)
    assert d.action == "rollback" and "prediction_shift PSI" in d.reasons[0]
    assert psi_value(HIST, HIST) == pytest.approx(0.0)
    assert d.checks[2].value == pytest.approx(psi_value(HIST, shifted))  # the monitors' PSI


def test_no_data_holds_and_never_passes() -> None:
    d = analyse_step(ROLLOUT, arm(), arm("2", step_requests=12), step=0)
    assert d.action == "hold"
    assert d.reasons == ["no data: challenger served 12 < min_requests 50 at 10%"]
    d = analyse_step(ROLLOUT, arm(), arm("2", outcomes={}), step=2)
    assert d.action == "hold" and "accuracy: labelled 0 challenger" in d.reasons[0]


def test_failed_check_budget() -> None:
    lenient = ROLLOUT.model_copy(update={"max_failed_checks": 1})
    bad = arm("2", errors=50)
    assert analyse_step(lenient, arm(), bad, step=0).action == "hold"
    assert analyse_step(lenient, arm(), bad, step=0, failed_before=1).action == "rollback"


def test_worse_accuracy_rolls_back_and_segment_guard() -> None:
    worse = arm("2", outcomes={"accuracy": Outcome(300, 150)})
    d = analyse_step(ROLLOUT, arm(), worse, step=0)
    assert d.action == "rollback" and d.reasons[0].startswith("accuracy drop 0.35")
    # overall equal, but one segment collapses
    champ = arm(outcomes={"accuracy": Outcome(600, 510), "accuracy[a]": Outcome(300, 255), "accuracy[b]": Outcome(300, 255)})
    chal = arm("2", outcomes={"accuracy": Outcome(600, 500), "accuracy[a]": Outcome(300, 290), "accuracy[b]": Outcome(300, 150)})
    d = analyse_step(ROLLOUT, champ, chal, step=0)
    assert d.action == "rollback" and d.reasons[0].startswith("accuracy[b] drop")


def test_only_configured_checks_run() -> None:
    r = Rollout(steps=[100], min_requests=10, checks=[RolloutCheck(metric="error_rate", max=0.5)])
    d = analyse_step(r, arm(), arm("2", latency_p95=9.0, outcomes={}), step=0)
    assert d.action == "promote" and [c.metric for c in d.checks] == ["error_rate"]


def test_sequential_test_detects_a_real_drop_and_rarely_fires_when_equal() -> None:
    """Check after every 25 labelled requests up to 2000; alpha = 0.05."""
    rng = np.random.default_rng(7)
    reps, n_max, every = 300, 2000, 25

    def first_crossing(p_champ: float, p_chal: float) -> np.ndarray:
        a = np.cumsum(rng.random((reps, n_max)) < p_champ, axis=1)
        b = np.cumsum(rng.random((reps, n_max)) < p_chal, axis=1)
        out = np.full(reps, -1)
        for n in range(every, n_max + 1, every):
            for r in np.flatnonzero(out < 0):
                lo, _ = drop_confidence_sequence(Outcome(n, int(a[r, n - 1])), Outcome(n, int(b[r, n - 1])), 0.05)
                if lo > 0.02:
                    out[r] = n
        return out

    null = first_crossing(0.85, 0.85)
    assert (null >= 0).mean() <= 0.05  # false rollbacks despite 80 looks each
    worse = first_crossing(0.85, 0.60)
    assert (worse >= 0).mean() == 1.0 and np.median(worse) <= 300


def test_shift_check_false_alarms_and_detection_at_small_samples() -> None:
    """100 predictions per arm: the noise floor keeps equal arms from failing, a real shift fails."""
    rng = np.random.default_rng(3)
    edges = np.linspace(0, 1, 11)
    rollout = Rollout(steps=[10, 100], min_requests=50, max_failed_checks=0, checks=[RolloutCheck(metric="prediction_shift", max=0.25)])

    def hist(a: float, b: float, n: int) -> tuple[float, ...]:
        return tuple(np.histogram(rng.beta(a, b, n), edges)[0].astype(float))

    def shift_failed(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        check = analyse_step(rollout, arm(prediction_counts=a), arm("2", prediction_counts=b), step=0).checks[0]
        return check.passed is False

    null = [shift_failed(hist(2, 5, 100), hist(2, 5, 100)) for _ in range(300)]
    assert np.mean(null) < 0.01  # the floor is the 99.9% quantile of PSI under no shift
    shifted = [shift_failed(hist(2, 5, 100), hist(5, 2, 100)) for _ in range(50)]
    assert all(shifted)


def test_shift_with_too_few_predictions_is_no_data() -> None:
    few = (1, 2, 3, 4, 5, 5, 4, 3, 2, 1)
    d = analyse_step(ROLLOUT, arm(), arm("2", prediction_counts=few), step=0)
    assert d.action == "hold" and d.reasons == ["prediction_shift: 30 challenger / 300 champion predictions < 100"]


def test_labelled_outcome_counts_use_the_one_decision_rule() -> None:
    import pandas as pd

    from components.metrics import correct
    from serving.canary.analysis import labelled_outcome_counts

    rng = np.random.default_rng(11)
    n = 400
    joined = pd.DataFrame({"model_version": rng.choice(["1", "2"], n), "prediction": rng.random(n).round(1),
                           "y": rng.integers(0, 2, n), "seg": rng.choice(["a", "b"], n)})
    out = labelled_outcome_counts(joined, "y", {"accuracy", "ctr"}, "seg")
    for version, group in joined.groupby("model_version"):
        right = correct(group["y"], group["prediction"])  # 0.5 exactly counts as class 1
        assert out[version]["accuracy"] == Outcome(len(group), int(right.sum()))
        assert out[version]["ctr"] == Outcome(len(group), int(group["y"].sum()))
        in_a = (group["seg"] == "a").to_numpy()
        assert out[version]["accuracy[a]"] == Outcome(int(in_a.sum()), int(right[in_a].sum()))


def test_evidence_decides_what_the_accuracy_check_uses() -> None:
    """Labels: the sequential test; estimate: the CBPE estimates (ctr is left out); errors-latency: no labelled check."""
    from serving.canary.analysis import Estimate

    r = Rollout(steps=[10, 100], min_requests=50, max_failed_checks=0,
                checks=[RolloutCheck(metric="error_rate", max=0.01), RolloutCheck(metric="accuracy", max_drop=0.02),
                        RolloutCheck(metric="ctr", max_drop=0.02)], label_delay="6h")
    good = {"accuracy": Estimate(0.90, 0.03, 400)}
    worse = {"accuracy": Estimate(0.70, 0.03, 400)}
    no_labels = {"accuracy": Outcome(), "ctr": Outcome()}
    d = analyse_step(r, arm(estimates=good, outcomes=no_labels), arm("2", estimates=good, outcomes=no_labels), step=0, evidence="estimate")
    assert d.action == "advance" and d.evidence == "estimate" and [c.metric for c in d.checks] == ["error_rate", "accuracy"]
    assert d.reasons[0] == "all checks passed at 10% on the estimate evidence"
    d = analyse_step(r, arm(estimates=good, outcomes=no_labels), arm("2", estimates=worse, outcomes=no_labels), step=0, evidence="estimate")
    assert d.action == "rollback" and d.reasons[0].startswith("accuracy estimated drop 0.2 +- 0.0424")
    # a drop inside both bands is not a failure: the estimate alone is not proof
    near = {"accuracy": Estimate(0.86, 0.03, 400)}
    assert analyse_step(r, arm(estimates=good), arm("2", estimates=near), step=0, evidence="estimate").checks[1].passed is True
    d = analyse_step(r, arm(outcomes=no_labels), arm("2", outcomes=no_labels), step=0, evidence="errors-latency")
    assert d.action == "advance" and [c.metric for c in d.checks] == ["error_rate"]
    # with labels in, the labelled checks decide as without a delay (no labels yet: no data, hold)
    assert analyse_step(r, arm(outcomes=no_labels), arm("2", outcomes=no_labels), step=0, evidence="labels").action == "hold"


def test_a_policy_without_label_delay_is_analysed_as_before() -> None:
    from serving.canary.analysis import LabelCoverage, StepDecision, wait_for_labels

    assert ROLLOUT.label_wait_seconds is None
    d = analyse_step(ROLLOUT, arm(), arm("2"), step=0)
    assert d.evidence is None and d.to_dict()["evidence"] is None and d.reasons[0] == "all checks passed at 10%"
    # waiting never holds back a rollback, nor a step whose labels are in
    rollback = StepDecision("rollback", ["error_rate 0.2 > 0.01"], evidence="estimate")
    short = LabelCoverage(100, 10, 1, 0.8, 50)
    assert wait_for_labels(rollback, short, deadline_passed=False) is rollback
    advance = StepDecision("advance", ["all checks passed at 10%"], evidence="labels")
    assert wait_for_labels(advance, LabelCoverage(100, 90, 60, 0.8, 50), deadline_passed=False) is advance

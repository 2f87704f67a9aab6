"""The false-alarm budget: each monitor's share of the policy's per-run false-alarm rate.

A policy may fire falsely in at most ``alpha`` of its runs on data without any change
(:data:`POLICY_FALSE_ALARM_RATE` unless the policy says otherwise). Each monitor gets an
equal share (Bonferroni: the per-run rate of the policy is at most the sum of the
monitors' rates) unless it states its own ``false_alarm_rate``. The online detectors
turn their share and the length of the window into a threshold:

- Page-Hinkley: ``lambda = ln(n / rate) / theta``, where ``theta`` solves
  ``E[exp(theta (x - mean - delta))] = 1`` on the reference errors (Lundberg's bound:
  one excursion of the statistic passes ``lambda`` with probability <= ``exp(-theta
  lambda)``; at most ``n`` excursions start in ``n`` rows).
- ADWIN: ``delta = rate / ln(n)`` (measured, not proven: see :func:`adwin_delta`).
- fet_online / cvm_online: ``ert = n / rate`` (a run of ``n`` rows fires with probability
  about ``1 - exp(-n / ert)``), capped at :data:`MAX_ERT` because calibration simulates
  ``1.5 x ert`` streams; above the cap the monitor states the larger rate it can promise.

>>> round(page_hinkley_threshold(0.0125, 10_000, reference=[0] * 90 + [1] * 10), 1)
50.8
>>> round(adwin_delta(0.0125, 10_000), 5)
0.00136
>>> fet_ert(0.0125, 10_000)
(20000, 0.3935)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

POLICY_FALSE_ALARM_RATE = 0.05  # per run of the whole policy, on data without change
MAX_ERT = 20_000  # fet_online / cvm_online: calibration cost grows with ert (about 10 s at 5000)
PH_DELTA = 0.02  # Page-Hinkley's tolerated increase of the mean, in the stream's units


def policy_false_alarm_rate(policy: Any) -> float:
    """The policy's per-run false-alarm rate (``policy.false_alarm_rate`` when it has one).

    >>> policy_false_alarm_rate(object())
    0.05
    """
    rate = getattr(policy, "false_alarm_rate", None)
    return float(rate) if rate is not None else POLICY_FALSE_ALARM_RATE


def monitor_false_alarm_rate(policy: Any, monitor: Any) -> float:
    """The monitor's budget: its own ``false_alarm_rate``, else an equal share of the policy's.

    Monitors that state their own rate are taken out of the policy's rate before the rest
    is split, so the sum stays at the policy's rate when it can.

    >>> from types import SimpleNamespace as NS
    >>> p = NS(monitors=[NS(false_alarm_rate=None), NS(false_alarm_rate=0.01), NS(false_alarm_rate=None)])
    >>> monitor_false_alarm_rate(p, p.monitors[0]), monitor_false_alarm_rate(p, p.monitors[1])
    (0.02, 0.01)
    """
    own = getattr(monitor, "false_alarm_rate", None)
    if own is not None:
        return float(own)
    monitors = list(getattr(policy, "monitors", [monitor]))
    stated = [m.false_alarm_rate for m in monitors if getattr(m, "false_alarm_rate", None) is not None]
    free = sum(1 for m in monitors if getattr(m, "false_alarm_rate", None) is None)
    left = policy_false_alarm_rate(policy) - sum(stated)
    share = left / max(free, 1)
    # a policy whose monitors state more than its rate still gets a running monitor; the
    # report's budget line shows the overrun
    return round(share if share > 0 else policy_false_alarm_rate(policy) / len(monitors), 12)


def _theta(values: np.ndarray, delta: float) -> float:
    """The adjustment coefficient: theta > 0 with mean(exp(theta (x - mean - delta))) = 1."""
    # scipy is imported here, not at the top: every pipeline task imports this module through the policy
    from scipy.optimize import brentq

    z = values - values.mean() - delta
    if z.max() <= 0:
        return math.inf  # the statistic can only fall: it never fires

    def f(t: float) -> float:
        return float(np.log(np.mean(np.exp(t * z - t * z.max()))) + t * z.max())

    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    return float(brentq(f, 1e-9, hi, xtol=1e-9))


def _ph_theta(reference: Any, delta: float) -> float:
    from scipy.optimize import brentq
    from scipy.stats import beta

    ref = np.asarray([] if reference is None else reference, dtype=float).ravel()
    ref = ref[np.isfinite(ref)]
    if len(ref) and not np.isin(ref, (0.0, 1.0)).all():
        return _theta(ref, delta)
    # the Jeffreys interval's upper end: a reference that happens to hold few errors must
    # not make the threshold too tight for the stream's true rate
    p = min(0.5, float(beta.ppf(0.975, ref.sum() + 0.5, len(ref) - ref.sum() + 0.5))) if len(ref) else 0.5
    z = np.array([0.0, 1.0]) - p - delta
    weights = np.array([1 - p, p])

    def f(t: float) -> float:
        return float(np.log(np.dot(weights, np.exp(t * z))))

    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    return float(brentq(f, 1e-9, hi, xtol=1e-9))


def page_hinkley_threshold(rate: float, n: int, reference: Any = None, delta: float = PH_DELTA) -> float:
    """Page-Hinkley's ``lambda`` for at most ``rate`` false alarms in ``n`` rows.

    ``reference`` holds values of the stream without change (the reference errors). A 0/1
    reference's error rate is taken at its Jeffreys 97.5% upper bound, so one without errors
    still gives a threshold; without a reference the worst 0/1 stream (error rate 0.5) is assumed.

    >>> round(page_hinkley_threshold(0.01, 1000), 1)
    71.9
    """
    theta = _ph_theta(reference, delta)
    if not math.isfinite(theta):
        return 1.0  # a constant reference: any sustained increase is a change
    return float(math.log(max(n, 1) / rate) / theta)


def page_hinkley_rate(threshold: float, n: int, reference: Any = None, delta: float = PH_DELTA) -> float:
    """The false-alarm rate over ``n`` rows that Page-Hinkley's ``threshold`` states (the inverse).

    >>> page_hinkley_rate(page_hinkley_threshold(0.01, 1000), 1000)
    0.01
    """
    theta = _ph_theta(reference, delta)
    return round(min(1.0, max(n, 1) * math.exp(-theta * threshold)), 6) if math.isfinite(theta) else 0.0


def adwin_delta(rate: float, n: int) -> float:
    """ADWIN's ``delta`` for at most ``rate`` false alarms in ``n`` rows: ``rate / ln(n)``.

    ADWIN checks every cut of its window every 32 rows, but consecutive checks share almost
    all their data, so the chance of a false cut grows like ``ln(n)``, not like the number
    of checks (measured: tests/components/monitor/test_calibration.py, 1k-100k rows).

    >>> round(adwin_delta(0.05, 1000), 5)
    0.00724
    """
    return float(min(0.5, max(1e-12, rate / math.log(max(n, 3)))))


def fet_ert(rate: float, n: int) -> tuple[int, float]:
    """``(ert, stated rate)`` for fet_online / cvm_online over ``n`` rows.

    ``ert = n / rate`` up to :data:`MAX_ERT`; the stated rate is the one that ``ert``
    promises over ``n`` rows, ``1 - exp(-n / ert)``.

    >>> fet_ert(0.05, 500)
    (10000, 0.0488)
    """
    ert = int(min(MAX_ERT, max(10, math.ceil(n / rate))))
    return ert, round(1 - math.exp(-n / ert), 4)


def ert_rate(ert: int, n: int) -> float:
    """The false-alarm rate over ``n`` rows that an expected run time ``ert`` states.

    >>> ert_rate(1000, 1000)
    0.6321
    """
    return round(1 - math.exp(-n / ert), 4)


def p_value_for(policy: Any, monitor: Any) -> float:
    """The p-value threshold of a test monitor: its ``p_value``, else its false-alarm budget.

    A family of tests (every feature) shares the level through the monitor's correction;
    segments (``per_segment``) split it further.

    >>> from types import SimpleNamespace as NS
    >>> m = NS(p_value=None, false_alarm_rate=None, per_segment=False)
    >>> p_value_for(NS(monitors=[m, NS(false_alarm_rate=None)]), m)
    0.025
    """
    if getattr(monitor, "p_value", None) is not None:
        return float(monitor.p_value)
    scopes = 1
    segments = getattr(policy, "segments", None)
    if getattr(monitor, "per_segment", False) and segments is not None and getattr(monitor, "segment", None) is None:
        scopes += len(segments.values)
    return round(monitor_false_alarm_rate(policy, monitor) / scopes, 12)


def stated_rate(policy: Any, monitor: Any, entry: dict[str, Any]) -> float | None:
    """The per-run false-alarm rate a monitor's settings state (None when it states none).

    Test monitors: their level (a corrected family counts once). Performance: the
    one-sided tail ``(1 - confidence) / 2`` of its interval per limit. Sequential: Wald's
    ``alpha / (1 - beta)`` per cohort. Concept drift: the runner's figure.

    >>> from types import SimpleNamespace as NS
    >>> m = NS(type="performance", confidence=0.95, min=0.8, max=None, max_relative_drop=None, per_segment=False)
    >>> stated_rate(NS(monitors=[m]), m, {"results": [{}]})
    0.025
    """
    kind = getattr(monitor, "type", "")
    scopes = max(1, len({r.get("segment") for r in entry.get("results", [])}))
    if "false_alarm_rate" in entry:
        return float(entry["false_alarm_rate"])
    if kind in ("feature_drift", "prediction_drift", "label_drift"):
        return round(p_value_for(policy, monitor) * scopes, 6)
    if kind == "performance":
        limits = sum(getattr(monitor, k, None) is not None for k in ("min", "max", "max_relative_drop"))
        return round((1 - monitor.confidence) / 2 * limits * scopes, 6)
    if kind == "sequential":
        cohorts = max(1, len(entry.get("results", [])))
        return round(monitor.alpha / (1 - monitor.beta) * cohorts, 6)
    return None

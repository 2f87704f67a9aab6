"""How each seed scenario is replayed by the demo: data size, the champion's cut-off, the periods.

>>> plan = plan_for("churn")
>>> [p.strftime("%Y-%m") for p in plan.periods][:3], plan.train_end.date().isoformat()
(['2025-05', '2025-06', '2025-07'], '2025-01-01')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from components.errors import DataError


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
    canary_interval: pd.Timedelta = pd.Timedelta(hours=1)  # scenario time per analysis interval (the scaled clock)
    min_requests: int = 12  # per arm per step, for the demo's short intervals
    seed: int = 0
    rollout_steps: tuple[int, ...] = (10, 25, 50, 100)
    # seconds: every server of the demo shares the machine's cores with the traffic replayer and the
    # pipelines it runs meanwhile (and, under `make test`, with other tests), so a freshly started arm's
    # p95 over a few dozen requests measures the laptop's load, not the model: a policy's absolute latency
    # limit below this is raised to it and the override is recorded in summary.json; None keeps the policy's
    latency_max: float | None = 0.5
    # a canary interval sends the rows of its own span of scenario time, each once, instead of a sample
    # (with replacement) of every row so far
    canary_fresh_rows: bool = False


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def plan_for(scenario: str, seed: int = 0) -> DemoPlan:
    """The replay plan of a seed scenario (its onset falls inside the replayed periods)."""
    month, hours12 = pd.DateOffset(months=1), pd.DateOffset(hours=12)
    plans = {
        "churn": DemoPlan("churn", 48_000, _utc("2025-01-01"),
                          list(pd.date_range("2025-05-01", "2025-10-01", freq="MS", tz="UTC")), month, "%Y-%m",
                          # a day per interval: churn waits at most a day (max_label_wait) for month-late labels,
                          # so each step is decided on the estimate after one interval (a demo of minutes, not hours)
                          canary_interval=pd.Timedelta(days=1)),
        "credit": DemoPlan("credit", 60_000, _utc("2025-01-01"),
                           list(pd.date_range("2025-03-01", "2025-12-01", freq="MS", tz="UTC")), month, "%Y-%m",
                           canary_interval=pd.Timedelta(hours=8)),
        "fraud": DemoPlan("fraud", 100_000, _utc("2025-03-07"),
                          list(pd.date_range("2025-03-08", "2025-03-13 12:00", freq="12h", tz="UTC")), hours12, "%m-%d %Hh",
                          batch=50),
        # six 5-day periods: one quiet, the category shift (05-31), one more, the casual drop from its first day
        # (06-10) so the specialist's 5-day window holds only the cohort's rows after it, two served by it;
        # the canaries take the policy's own three steps. Four hours per analysis interval: a label goes to its
        # user's latest prediction, so only fresh rows bring labels; at 10% of the casual third of the traffic,
        # 4 h bring ~11 casual rows to the challenger (10 minutes brought none in 6 intervals: rolled back); sent
        # once each, since a resampled row's label goes to one of its copies only (4 labelled in 6 intervals);
        # one row per request: the cohort router splits a mixed request row by row under the predictors' own ids,
        # which the replay's per-request label ids (<response id>-<i>) do not match (0 labelled in 3 intervals)
        "recsys": DemoPlan("recsys", 120_000, _utc("2025-05-22"),
                           list(pd.date_range("2025-05-26", "2025-06-20", freq="5D", tz="UTC")), pd.DateOffset(days=5), "%m-%d",
                           batch=50, canary_interval=pd.Timedelta(hours=4), rollout_steps=(10, 50, 100),
                           canary_fresh_rows=True, canary_batch=1, canary_requests=400),
        "concept": DemoPlan("concept", 72_000, _utc("2025-04-08"),
                            list(pd.date_range("2025-04-10", "2025-04-29", freq="2D", tz="UTC")), pd.DateOffset(days=2), "%m-%d",
                            canary_interval=pd.Timedelta(minutes=10)),
    }
    if scenario not in plans:
        raise DataError(f"unknown scenario {scenario!r}", fix=f"use one of: {', '.join(sorted(plans))}")
    plan = plans[scenario]
    return plan if seed == plan.seed else DemoPlan(**{**plan.__dict__, "seed": seed})


def demo_policy_yaml(policy: Any, plan: DemoPlan) -> str:
    """The scenario's policy with the rollout tuned for compressed time (fewer requests per step).

    The analysis interval is 1 controller second, which the demo's scaled clock turns into
    ``plan.canary_interval`` of scenario time; the label delay stays the policy's. An absolute
    latency limit below ``plan.latency_max`` is raised to it (see :class:`DemoPlan`).

    >>> import yaml
    >>> from components.policy import load_policy
    >>> text = demo_policy_yaml(load_policy("churn"), plan_for("churn"))
    >>> "min_requests: 12" in text, {"metric": "latency_p95", "max": 0.5} in yaml.safe_load(text)["rollout"]["checks"]
    (True, True)
    """
    import yaml

    raw = policy.model_dump(mode="json", exclude_none=True)
    checks = [{**c, "max": plan.latency_max} if plan.latency_max is not None and _latency_limit_below(c, plan.latency_max) else c
              for c in raw["rollout"].get("checks", [])]
    raw["rollout"] = {**raw["rollout"], "min_requests": plan.min_requests, "steps": list(plan.rollout_steps), "interval_seconds": 1,
                      "checks": checks}
    return yaml.safe_dump(raw, sort_keys=False)


def _latency_limit_below(check: dict[str, Any], limit: float) -> bool:
    return check.get("metric") == "latency_p95" and check.get("max") is not None and check["max"] < limit

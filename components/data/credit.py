"""credit: monthly loan applicants in a prime (~70%) and a subprime (~30%) segment.

Default depends on debt-to-income, utilization, delinquencies, credit history, income and
loan size. From 2025-07 half of the subprime applicants are a new type (thin-file gig
workers: self-employed, short history, few delinquencies) whose default is driven by loan
size relative to income instead, a relation the old model barely uses. The subprime Gini of
a model trained before the onset falls by ~20% relative; prime is untouched.

>>> import numpy as np
>>> df = build(SPEC, 240, np.random.default_rng(0))
>>> sorted(df["segment"].unique())
['prime', 'subprime']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.data.spec import (
    ScenarioSpec,
    bernoulli,
    label_times,
    spread_in_periods,
    utc,
)

SPEC = ScenarioSpec(
    name="credit",
    entity="applicant_id",
    timestamp="event_timestamp",
    label="defaulted",
    features=("income", "debt_to_income", "credit_history_months", "num_delinquencies", "loan_amount", "utilization"),
    categorical_features=("employment",),
    segment="segment",
    segment_values=("prime", "subprime"),
    period="month",
    start=utc("2024-01-01"),
    end=utc("2025-12-01"),
    onset=utc("2025-07-01"),
    drift=(
        "From 2025-07 half of the subprime applicants are thin-file, self-employed gig workers "
        "whose default depends on loan_amount relative to income rather than on delinquencies, "
        "utilization or history; the subprime Gini of a model trained before the onset falls "
        "~20% relative while prime stays within ~1%."
    ),
    default_rows=60_000,
    label_delay="period_end",
)

EMPLOYMENT = ("employed", "self_employed", "unemployed", "retired")


def build(spec: ScenarioSpec, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``rows`` applicants spread evenly over the months, each applying once."""
    months = spec.periods()
    month_idx = np.sort(rng.integers(0, len(months), rows))
    starts = months[month_idx]
    ends = starts + spec.period_length()
    events = spread_in_periods(rng, starts, (ends - starts).total_seconds().to_numpy())
    post = np.asarray(starts >= spec.onset)

    sub = rng.random(rows) < 0.3
    gig = sub & post & (rng.random(rows) < 0.5)  # the new applicant type
    income = np.exp(rng.normal(np.where(sub, 10.6, 11.2), 0.35))
    dti = np.clip(rng.beta(np.where(sub, 3.5, 2.5), np.where(sub, 6.5, 7.5)), 0.01, 0.95)
    history = rng.integers(np.where(sub, 6, 36), np.where(sub, 120, 360))
    delinq = rng.poisson(np.where(sub, 0.7, 0.15))
    util = rng.beta(np.where(sub, 3.0, 2.0), np.where(sub, 5.0, 6.0))
    loan = np.exp(rng.normal(np.where(sub, 9.0, 9.6), 0.5))
    emp_p = np.where(sub[:, None], [0.6, 0.15, 0.15, 0.1], [0.8, 0.12, 0.02, 0.06])
    emp_code = (rng.random(rows)[:, None] > np.cumsum(emp_p, axis=1)).sum(axis=1)

    # gig workers: self-employed, thin files, their risk is in loan size vs income
    history = np.where(gig, rng.integers(3, 24, rows), history)
    delinq = np.where(gig, rng.poisson(0.3, rows), delinq)
    emp_code = np.where(gig, 1, emp_code)
    loan = np.where(gig, np.exp(rng.normal(9.3, 0.7, rows)), loan)
    util = np.where(gig, rng.beta(3.0, 5.0, rows), util)

    logit = (
        -1.4
        + 5.0 * (dti - 0.3)
        + 0.5 * delinq
        + 3.0 * (util - 0.4)
        - 0.01 * (history - 60)
        - 1.0 * np.log(income / 50_000)
        + 0.5 * np.log(loan / 15_000)
        + np.array([0.0, 0.3, 1.0, -0.2])[emp_code]
    )
    gig_logit = -1.2 + 3.0 * np.log(loan / income / 0.3) + rng.normal(0, 0.3, rows)
    defaulted = bernoulli(rng, np.where(gig, gig_logit, logit))

    return pd.DataFrame(
        {
            spec.entity: np.arange(1, rows + 1, dtype=np.int64),
            spec.timestamp: events,
            "income": np.round(income, 2),
            "debt_to_income": np.round(dti, 4),
            "credit_history_months": history.astype(np.int64),
            "num_delinquencies": delinq.astype(np.int64),
            "loan_amount": np.round(loan, 2),
            "utilization": np.round(util, 4),
            "employment": np.asarray(EMPLOYMENT, dtype=object)[emp_code],
            "segment": np.where(sub, "subprime", "prime").astype(object),
            spec.label: defaulted,
            "label_timestamp": label_times(rng, spec, events, starts),
        }
    )

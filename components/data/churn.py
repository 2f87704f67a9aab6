"""churn: monthly customer snapshots; a price change at 2025-07 raises charges and churn.

Each customer appears once a month (2024-01 .. 2025-12). Before the onset about 9% of
customers churn a month, driven by contract, tenure, charges, support calls and products.
From the onset monthly charges rise ~18% and month-to-month customers whose bill passes
~80 churn far more, so churn roughly triples and a model fit before the onset, which
mostly predicts "stays", falls below 0.85 accuracy.

>>> import numpy as np
>>> df = build(SPEC, 48, np.random.default_rng(0))
>>> len(df), df["customer_id"].nunique()
(48, 2)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.data.spec import ScenarioSpec, bernoulli, choice, utc

SPEC = ScenarioSpec(
    name="churn",
    entity="customer_id",
    timestamp="event_timestamp",
    label="churned",
    features=("tenure_months", "monthly_charges", "total_charges", "support_calls", "num_products"),
    categorical_features=("contract", "region"),
    segment=None,
    period="month",
    start=utc("2024-01-01"),
    end=utc("2025-12-01"),
    onset=utc("2025-07-01"),
    drift=(
        "From 2025-07 a price change raises monthly_charges by ~18% and makes month-to-month "
        "customers billed over ~80 far likelier to churn: the churn rate rises from ~9% to ~25%, "
        "monthly_charges drifts (KS) and a model trained before the onset drops below 0.85 accuracy."
    ),
    default_rows=48_000,
    label_delay="period_end",
)

CONTRACTS = ("month-to-month", "one_year", "two_year")
REGIONS = ("north", "south", "east", "west")


def build(spec: ScenarioSpec, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``rows // months`` customers, each observed every month (at least one customer)."""
    months = spec.periods()
    n_months, n_cust = len(months), max(1, rows // len(months))
    contract_code = rng.choice(3, size=n_cust, p=[0.5, 0.3, 0.2])
    region = choice(rng, REGIONS, n_cust, p=[0.3, 0.25, 0.25, 0.2])
    tenure0 = rng.integers(0, 60, n_cust)
    base_charge = np.clip(rng.normal(65, 18, n_cust), 20, 120)
    products = rng.choice([1, 2, 3, 4], size=n_cust, p=[0.35, 0.35, 0.2, 0.1])

    # month-major (n_months, n_cust) grids, flattened so rows come out in time order
    m = np.arange(n_months)[:, None]
    post = np.asarray(months >= spec.onset)[:, None]
    tenure = tenure0[None, :] + m
    charges = base_charge[None, :] * np.where(post, 1.18, 1.0) + rng.normal(0, 3, (n_months, n_cust))
    charges = np.round(np.clip(charges, 15, None), 2)
    total = np.round(charges * np.maximum(tenure, 1) * rng.uniform(0.92, 1.0, (n_months, n_cust)), 2)
    mtm = (contract_code == 0)[None, :]
    calls = rng.poisson(np.where(mtm, 1.3, 0.8), (n_months, n_cust))

    logit = (
        -2.45
        + 1.1 * mtm
        - 0.5 * (contract_code == 2)[None, :]
        - 0.6 * np.log1p(tenure / 12)
        + 0.02 * (charges - 65)
        + 0.55 * (calls - 1)
        - 0.3 * (products[None, :] - 2)
    )
    # the price change: month-to-month customers whose new bill passes ~80 now leave far more
    # often. The shock is sharp in observed features, so a model retrained on post-onset
    # months can learn it back (accuracy ~0.88) while the old model cannot (~0.75).
    shock = 4.0 * mtm / (1.0 + np.exp(-(charges - 80.0) / 2.5))
    logit = logit + np.where(post, shock, 0.0)
    churned = bernoulli(rng, logit.ravel())

    starts = np.repeat(months, n_cust)
    return pd.DataFrame(
        {
            spec.entity: np.tile(np.arange(1, n_cust + 1, dtype=np.int64), n_months),
            spec.timestamp: starts,
            "tenure_months": tenure.ravel().astype(np.int64),
            "monthly_charges": charges.ravel(),
            "total_charges": total.ravel(),
            "support_calls": calls.ravel().astype(np.int64),
            "num_products": np.tile(products, n_months).astype(np.int64),
            "contract": np.tile(np.asarray(CONTRACTS, dtype=object)[contract_code], n_months),
            "region": np.tile(region, n_months),
            spec.label: churned,
            "label_timestamp": starts + spec.period_length(),
        }
    )

"""recsys: daily user-item interactions (60 days from 2025-05-01) with a click label.

Users belong to a cohort (new / casual / power) and use a device; each interaction shows an
item of one of 10 categories at a list position. Click-through depends on position, item
popularity, price, cohort and device. Two drifts: from 2025-05-31 category popularity shifts
(PSI on item_category well above 0.25); from 2025-06-10 the casual cohort's click-through
drops by about a third while the other cohorts stay.

>>> import numpy as np
>>> df = build(SPEC, 600, np.random.default_rng(0))
>>> sorted(df["user_cohort"].unique())
['casual', 'new', 'power']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.data.spec import ScenarioSpec, bernoulli, label_times, utc

SPEC = ScenarioSpec(
    name="recsys",
    entity="user_id",
    timestamp="event_timestamp",
    label="clicked",
    features=("position", "user_tenure_days", "item_price", "item_popularity"),
    categorical_features=("item_category", "device", "user_cohort"),
    segment="user_cohort",
    segment_values=("new", "casual", "power"),
    period="day",
    start=utc("2025-05-01"),
    end=utc("2025-06-29"),
    onset=utc("2025-05-31"),
    onset2=utc("2025-06-10"),
    drift=(
        "Onset 1 (2025-05-31): item-category popularity shifts (electronics, fashion and books "
        "give way to home, sports and beauty), PSI on item_category ~1. Onset 2 (2025-06-10): "
        "the casual cohort's click-through rate drops ~35% relative; new and power stay."
    ),
    default_rows=120_000,
    label_delay="minutes",
)

CATEGORIES = ("electronics", "fashion", "books", "home", "sports", "beauty", "toys", "grocery", "garden", "music")
_POP_BEFORE = np.array([0.22, 0.2, 0.15, 0.08, 0.07, 0.06, 0.07, 0.06, 0.05, 0.04])
_POP_AFTER = np.array([0.06, 0.06, 0.05, 0.22, 0.2, 0.16, 0.07, 0.07, 0.06, 0.05])
_CAT_PRICE = np.array([120, 45, 15, 60, 50, 25, 30, 8, 40, 12], dtype=float)
COHORTS = ("new", "casual", "power")
DEVICES = ("mobile", "desktop", "tablet")


def build(spec: ScenarioSpec, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``rows`` interactions by ``rows // 40`` users (power users act three times as often)."""
    days = spec.periods()
    n_users = max(30, rows // 40)
    cohort = rng.choice(3, size=n_users, p=[0.25, 0.5, 0.25])
    tenure0 = np.select([cohort == 0, cohort == 1], [rng.integers(0, 30, n_users), rng.integers(30, 700, n_users)], rng.integers(100, 1500, n_users))
    device = rng.choice(3, size=n_users, p=[0.6, 0.3, 0.1])
    activity = np.array([1.0, 1.0, 3.0])[cohort]

    user = rng.choice(n_users, size=rows, p=activity / activity.sum())
    day_idx = rng.integers(0, len(days), rows)
    events = days[day_idx] + pd.to_timedelta(rng.integers(0, 86_400_000, rows), unit="ms")
    post1 = np.asarray(events >= spec.onset)
    post2 = np.asarray(events >= spec.onset2)

    cat_p = np.where(post1[:, None], _POP_AFTER, _POP_BEFORE)
    cat = (rng.random(rows)[:, None] > np.cumsum(cat_p, axis=1)).sum(axis=1).clip(0, 9)
    position = rng.integers(1, 11, rows)
    price = np.round(_CAT_PRICE[cat] * np.exp(rng.normal(0, 0.4, rows)), 2)
    popularity = np.round(rng.beta(2, 5, rows), 4)
    dev = np.where(rng.random(rows) < 0.85, device[user], rng.integers(0, 3, rows))
    coh = cohort[user]

    logit = (
        -1.5
        - 0.15 * (position - 1)
        + 2.0 * (popularity - 0.3)
        - 0.25 * np.log(price / 30)
        + np.array([-0.3, 0.0, 0.5])[coh]
        + np.array([0.1, 0.0, -0.1])[dev]
    )
    logit = logit - np.where(post2 & (coh == 1), 0.5, 0.0)  # casual users lose interest
    clicked = bernoulli(rng, logit)

    return pd.DataFrame(
        {
            spec.entity: (user + 1).astype(np.int64),
            spec.timestamp: events,
            "position": position.astype(np.int64),
            "user_tenure_days": (tenure0[user] + day_idx).astype(np.int64),
            "item_price": price,
            "item_popularity": popularity,
            "item_category": np.asarray(CATEGORIES, dtype=object)[cat],
            "device": np.asarray(DEVICES, dtype=object)[dev],
            "user_cohort": np.asarray(COHORTS, dtype=object)[coh],
            spec.label: clicked,
            "label_timestamp": label_times(rng, spec, events, days[day_idx]),
        }
    )

"""fraud: an hourly card-transaction stream (2025-03-01 .. 2025-03-14) with ~2.5% fraud.

Transactions are generated class-first (fraud or not, more fraud at night), then features
from the class's profile. Before the onset fraud is large, far from home, online, fast and
at risky merchants. From 2025-03-10T00:00 fraudsters adapt: their transactions are small,
near home and card-present at everyday merchants, so a model trained before misses them
(recall collapses, the error rate jumps). Only a higher velocity and night-time still give
them away, which a retrained model can learn. Labels arrive 2-6 hours after the event.

>>> import numpy as np
>>> df = build(SPEC, 500, np.random.default_rng(0))
>>> bool((df["label_timestamp"] > df["event_timestamp"]).all())
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.data.spec import ScenarioSpec, label_times, spread_in_periods, utc

SPEC = ScenarioSpec(
    name="fraud",
    entity="transaction_id",
    timestamp="event_timestamp",
    label="is_fraud",
    features=("amount", "distance_from_home_km", "velocity_1h", "hour_of_day", "merchant_risk"),
    categorical_features=("merchant_category", "channel"),
    segment=None,
    period="hour",
    start=utc("2025-03-01T00:00"),
    end=utc("2025-03-14T23:00"),
    onset=utc("2025-03-10T00:00"),
    drift=(
        "Adversarial concept drift at 2025-03-10T00:00: fraud switches from large, distant, "
        "online, high-risk-merchant transactions to small, near-home, card-present ones at "
        "grocery and fuel merchants. Recall of a model trained before drops from ~0.8 to "
        "near 0 and its error rate jumps; inputs barely move because fraud is ~2.5% of rows."
    ),
    default_rows=100_000,
    label_delay="hours",
)

CATEGORIES = ("grocery", "fuel", "restaurant", "online_retail", "electronics", "travel", "jewelry")
CHANNELS = ("card_present", "contactless", "online")
_LEGIT_CAT = [0.3, 0.15, 0.2, 0.2, 0.08, 0.05, 0.02]
_FRAUD_CAT = [0.04, 0.04, 0.04, 0.3, 0.28, 0.15, 0.15]
_ADAPTED_CAT = [0.5, 0.35, 0.1, 0.02, 0.01, 0.01, 0.01]
_CAT_RISK = np.array([0.05, 0.08, 0.06, 0.2, 0.3, 0.25, 0.35])


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row from per-row probability vectors (vectorised)."""
    return (rng.random(probs.shape[0])[:, None] > np.cumsum(probs, axis=1)).sum(axis=1).clip(0, probs.shape[1] - 1)


def build(spec: ScenarioSpec, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``rows`` transactions over the hours, busier in the day, fraud likelier at night."""
    hours = spec.periods()
    hod = hours.hour.to_numpy()
    traffic = 1.0 + 0.8 * np.sin((hod - 8) / 24 * 2 * np.pi).clip(0)  # daytime peak
    hour_idx = np.sort(rng.choice(len(hours), size=rows, p=traffic / traffic.sum()))
    starts = hours[hour_idx]
    events = spread_in_periods(rng, starts, 3600.0)
    hour_of_day = hod[hour_idx]
    night = (hour_of_day < 6).astype(float)
    fraud = rng.random(rows) < 0.02 * (1 + 1.2 * night)
    adapted = fraud & np.asarray(starts >= spec.onset)
    old = fraud & ~adapted

    amount = np.exp(rng.normal(3.4, 0.9, rows))
    amount = np.where(old, np.exp(rng.normal(4.6, 1.1, rows)), amount)
    amount = np.where(adapted, np.exp(rng.normal(3.0, 0.6, rows)), amount)
    distance = np.exp(rng.normal(1.5, 0.9, rows))
    distance = np.where(old, np.exp(rng.normal(3.2, 1.2, rows)), distance)
    distance = np.where(adapted, np.exp(rng.normal(1.2, 0.6, rows)), distance)
    velocity = rng.poisson(np.where(old, 2.5, np.where(adapted, 3.5, 0.8))) + 1

    cat_p = np.where(old[:, None], _FRAUD_CAT, np.where(adapted[:, None], _ADAPTED_CAT, _LEGIT_CAT))
    cat = _pick(rng, cat_p)
    chan_p = np.where(old[:, None], [0.15, 0.1, 0.75], np.where(adapted[:, None], [0.85, 0.13, 0.02], [0.55, 0.2, 0.25]))
    chan = _pick(rng, chan_p)
    risk = np.clip(_CAT_RISK[cat] + rng.normal(0, 0.08, rows) + np.where(old, 0.1, 0.0), 0, 1)

    return pd.DataFrame(
        {
            spec.entity: np.arange(1, rows + 1, dtype=np.int64),
            spec.timestamp: events,
            "amount": np.round(amount, 2),
            "distance_from_home_km": np.round(distance, 2),
            "velocity_1h": velocity.astype(np.int64),
            "hour_of_day": hour_of_day.astype(np.int64),
            "merchant_risk": np.round(risk, 4),
            "merchant_category": np.asarray(CATEGORIES, dtype=object)[cat],
            "channel": np.asarray(CHANNELS, dtype=object)[chan],
            spec.label: fraud.astype(np.int64),
            "label_timestamp": label_times(rng, spec, events, starts),
        }
    )

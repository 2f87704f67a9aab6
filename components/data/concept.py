"""concept: hourly web sessions (30 days from 2025-04-01) with a conversion label.

Feature distributions never change. Conversion is a logistic function of standardised
features; from 2025-04-16 its feature effects flip sign, but only for sessions in region
``west`` during the ``evening`` daypart (18:00-23:59). The flip keeps that slice's
conversion rate (the features are centred and symmetric), so label drift stays small:
feature-drift tests pass while accuracy falls, and slicing errors by region and daypart
finds the failing slice.

>>> import numpy as np
>>> daypart(np.array([3, 9, 15, 21])).tolist()
['night', 'morning', 'afternoon', 'evening']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.data.spec import ScenarioSpec, bernoulli, choice, label_times, utc

SPEC = ScenarioSpec(
    name="concept",
    entity="session_id",
    timestamp="event_timestamp",
    label="converted",
    features=("session_length", "basket_value", "discount", "pages_viewed"),
    categorical_features=("region", "daypart"),
    segment=None,
    period="hour",
    start=utc("2025-04-01T00:00"),
    end=utc("2025-04-30T23:00"),
    onset=utc("2025-04-16T00:00"),
    drift=(
        "From 2025-04-16 P(converted | features) flips in region 'west' during the 'evening' "
        "daypart only (~9% of sessions); feature distributions are identical before and after "
        "and the overall conversion rate moves by well under a point, so only accuracy, the "
        "error stream and error slicing reveal it."
    ),
    default_rows=72_000,
    label_delay="minutes",
)

REGIONS = ("north", "south", "east", "west")
DAYPARTS = ("night", "morning", "afternoon", "evening")


def daypart(hour: np.ndarray) -> np.ndarray:
    """night 0-5, morning 6-11, afternoon 12-17, evening 18-23."""
    return np.asarray(DAYPARTS, dtype=object)[np.asarray(hour) // 6]


def build(spec: ScenarioSpec, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``rows`` sessions over the hours with a fixed daily traffic profile (evening peak)."""
    hours = spec.periods()
    hod = hours.hour.to_numpy()
    traffic = np.array([0.3, 0.6, 1.0, 1.6])[hod // 6]
    hour_idx = np.sort(rng.choice(len(hours), size=rows, p=traffic / traffic.sum()))
    starts = hours[hour_idx]
    events = starts + pd.to_timedelta(rng.integers(0, 3_600_000, rows), unit="ms")
    region = choice(rng, REGIONS, rows, p=[0.3, 0.25, 0.2, 0.25])
    part = daypart(hod[hour_idx])

    # standardised, symmetric latent drivers -> realistic columns
    z_len, z_basket, z_pages = (rng.standard_normal(rows) for _ in range(3))
    disc_level = rng.integers(0, 5, rows)  # 0, 5, ..., 20 % off, symmetric around 10 %
    z_disc = (disc_level - 2) / np.sqrt(2)
    pages = np.clip(np.round(6 + 2.5 * z_pages), 1, None)
    effect = 1.3 * z_pages + 0.9 * z_disc + 0.7 * z_len - 0.5 * z_basket
    flip = np.asarray(events >= spec.onset) & (region == "west") & (part == "evening")
    converted = bernoulli(rng, -0.6 + np.where(flip, -effect, effect))

    return pd.DataFrame(
        {
            spec.entity: np.arange(1, rows + 1, dtype=np.int64),
            spec.timestamp: events,
            "session_length": np.round(np.exp(1.8 + 0.6 * z_len), 2),  # minutes
            "basket_value": np.round(np.exp(3.5 + 0.7 * z_basket), 2),
            "discount": (disc_level * 5).astype(float),
            "pages_viewed": pages.astype(np.int64),
            "region": region,
            "daypart": part,
            spec.label: converted,
            "label_timestamp": label_times(rng, spec, events, starts),
        }
    )

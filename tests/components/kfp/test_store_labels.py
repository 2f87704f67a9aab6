"""The KFP canary step's labels: the label store joined to the prediction log by entity and time.

It is :func:`serving.canary.label_source.store_label_source` with a tolerance (one
implementation of "labels from the store as known by now"); this pins the cluster's case:
the store knows entities and event times, the log knows request ids and prediction times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from components import features
from components.data.scenarios import generate
from components.kfp.canary import store_labels
from components.policy import load_policy
from components.settings import Settings
from serving.prediction_log import PredictionLogger

pytestmark = pytest.mark.integration


def test_labels_join_the_latest_earlier_prediction_once_the_store_knows_them(tmp_path) -> None:
    policy = load_policy("fraud")
    settings = Settings(workdir=tmp_path / "work")
    t0 = datetime(2025, 3, 8, 12, tzinfo=UTC)
    rows = generate("fraud", rows=200, seed=1).head(3).copy()
    rows[policy.entity] = ["e1", "e2", "e3"]
    rows[policy.timestamp] = pd.to_datetime([t0 + timedelta(minutes=5)] * 3, utc=True)  # events 5 min after the predictions
    rows[policy.label] = [1, 0, 1]
    rows["label_timestamp"] = pd.to_datetime([t0 + timedelta(hours=2), t0 + timedelta(hours=2), t0 + timedelta(hours=9)], utc=True)
    features.ingest("fraud", settings, rows)

    log_dir = tmp_path / "log"
    logger = PredictionLogger(str(log_dir), policy.model)
    logger.log("r-early", "1", {policy.entity: "e1"}, 0.9, when=t0 - timedelta(hours=3))  # outside the 1h tolerance
    logger.log("r1", "1", {policy.entity: "e1"}, 0.8, when=t0)
    logger.log("r2", "1", {policy.entity: "e2"}, 0.1, when=t0)
    logger.log("r3", "1", {policy.entity: "e3"}, 0.7, when=t0)
    logger.log("r-later", "1", {policy.entity: "e2"}, 0.2, when=t0 + timedelta(minutes=30))  # after the event: never labelled by it
    logger.close()

    now = {"t": t0 + timedelta(hours=1)}
    poll = store_labels(policy, settings, str(log_dir), t0 - timedelta(hours=4), now=lambda: now["t"])
    assert poll().empty  # no label is known an hour in
    now["t"] = t0 + timedelta(hours=3)
    got = poll().set_index("request_id")[policy.label].to_dict()
    assert got == {"r1": 1, "r2": 0}  # e3's label arrives at +9h; r-early is too old, r-later came after the event
    now["t"] = t0 + timedelta(hours=10)
    assert poll().set_index("request_id")[policy.label].to_dict() == {"r1": 1, "r2": 0, "r3": 1}

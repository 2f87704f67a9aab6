"""Fraud's canary with fraud's real label delay (2-6 h), time compressed 180x.

The controller runs as in production except for the traffic backend and the metric
counters (stand-ins): the prediction log is written by the product's PredictionLogger, the
labels are read by polling the label store (components.features, local parquet) for the
labels known by the controller's clock, and the estimates are the CBPE of
components.monitor.estimated calibrated on each version's reference sample. One clock
(ScaledClock) drives the step deadlines and the label availability: a 20 s interval is one
hour of scenario time.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from serving_fixtures import FakeSource, SpyBackend

from components.data.scenarios import generate
from components.policy import load_policy
from components.settings import Settings
from serving.canary.controller import run_rollout
from serving.canary.label_source import ScaledClock, store_label_source
from serving.prediction_log import PredictionLogger

pytestmark = pytest.mark.integration

POLICY = load_policy("fraud")
START = pd.Timestamp("2025-03-08T00:00:00Z")  # before the onset (03-10): a good challenger is as good as the champion


class Registry:
    """The registry protocol over in-memory versions (the models live in this process)."""

    def __init__(self, references: dict[str, pd.DataFrame]) -> None:
        self.references, self.champion, self.events = references, "1", []  # type: ignore[var-annotated]

    def get(self, model: str, alias: str) -> Any:
        return SimpleNamespace(version=int(self.champion)) if alias == "champion" else None

    def resolve(self, model: str, ref: str | int) -> Any:
        return SimpleNamespace(version=int(self.champion) if ref == "champion" else int(str(ref).rsplit("/", 1)[-1]))

    def set_challenger(self, model: str, version: int, **kw: Any) -> None:
        self.events.append(("challenger", version))

    def promote(self, model: str, version: int | None = None, **kw: Any) -> None:
        self.champion = str(version)
        self.events.append(("promote", version))

    def rollback(self, model: str, **kw: Any) -> None:
        self.events.append(("rollback", kw.get("version")))

    def reference_sample(self, model: str, ref: str) -> pd.DataFrame:
        return self.references[str(ref)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from components import features

    data = generate("fraud", rows=40_000, seed=0)
    settings = Settings(workdir=tmp_path_factory.mktemp("fraud"))
    features.ingest("fraud", settings, data)  # every label, each with its own label_timestamp
    ts = data[POLICY.timestamp]
    cols = [*POLICY.features, *POLICY.categorical_features]

    def fit(lo: str, hi: str, invert: bool = False) -> tuple[Any, pd.DataFrame]:
        rows = data[(ts >= pd.Timestamp(lo, tz="UTC")) & (ts < pd.Timestamp(hi, tz="UTC"))]
        train, holdout = rows.iloc[: len(rows) * 3 // 4], rows.iloc[len(rows) * 3 // 4:]
        y = 1 - train[POLICY.label] if invert else train[POLICY.label]
        model = make_pipeline(ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), POLICY.categorical_features)],
                                                remainder=StandardScaler()), LogisticRegression(max_iter=1000)).fit(train[cols], y)
        reference = holdout[[POLICY.label]].assign(**{POLICY.prediction: model.predict_proba(holdout[cols])[:, 1]})
        return model, reference

    models, refs = {}, {}
    for version, (lo, hi, invert) in {"1": ("2025-03-01", "2025-03-06", False), "2": ("2025-03-02", "2025-03-08", False),
                                      "3": ("2025-03-01", "2025-03-06", True)}.items():
        models[version], refs[version] = fit(lo, hi, invert)
    return SimpleNamespace(data=data, settings=settings, models=models, refs=refs, cols=cols)


def canary(world: SimpleNamespace, challenger: str, tmp_path: Path, requests_per_interval: int = 1000) -> tuple[Any, list[str]]:
    """Roll ``challenger`` out over live fraud traffic from START; labels only as the store knows them."""
    backend, source, registry = SpyBackend(), FakeSource(), Registry(world.refs)
    log_dir = tmp_path / "log"
    logger = PredictionLogger(log_dir, POLICY.model, fsync="none", retention_days=365)
    sent: list[dict[str, Any]] = []
    rng = np.random.default_rng(int(challenger))
    ts = world.data[POLICY.timestamp]

    def serve(start: pd.Timestamp, end: pd.Timestamp) -> None:
        """The traffic of scenario time [start, end): rows of that span, split by the backend's share."""
        span = world.data[(ts >= start) & (ts < end)]
        rows = span.iloc[rng.integers(0, len(span), requests_per_interval)]
        to_challenger = rng.random(len(rows)) * 100 < backend.percent
        for version, part in ((challenger, rows[to_challenger]), (registry.champion, rows[~to_challenger])):
            scores = world.models[version].predict_proba(part[world.cols])[:, 1] if len(part) else []
            for n, (row, score) in enumerate(zip(part.to_dict("records"), scores, strict=True)):
                rid = f"{start.value}-{version}-{n}"
                logger.log(rid, version, {POLICY.entity: row[POLICY.entity]}, float(score))
                sent.append({"request_id": rid, POLICY.entity: row[POLICY.entity], POLICY.timestamp: row[POLICY.timestamp]})
            source.add(version, len(part))
        logger.flush()

    clock = ScaledClock(START, scale=180, on_advance=serve)
    labels = store_label_source(POLICY, world.settings, lambda: pd.DataFrame(sent), clock.time)
    lines: list[str] = []
    try:
        result = run_rollout(POLICY, backend, source, registry, challenger_uri=f"models:/fraud/{challenger}", labels=labels,
                             log_dir=log_dir, clock=clock.time, sleep=clock.sleep, on_step=lines.append, lease_seconds=1e9)
    finally:
        logger.close()
    return result, lines


def test_good_challenger_waits_for_labels_at_each_step_then_is_promoted(world: SimpleNamespace, tmp_path: Path) -> None:
    result, lines = canary(world, "2", tmp_path)
    assert result.outcome == "promoted", lines
    assert result.evidence == "labels", lines
    decided = [s for s in result.steps if s["decision"] in ("advance", "promote")]
    assert [s["percent"] for s in decided] == [5, 20, 50, 100]
    assert all(s["evidence"] == "labels" and s["labels"]["enough"] for s in decided), lines
    # before the labels were in, each step held on the estimate and said so
    waiting = [s for s in result.steps if s["reasons"][0].startswith("waiting for labels")]
    assert waiting and all(s["evidence"] == "estimate" for s in waiting)
    assert any(line.startswith("step 1/4 at 5%: hold on estimate - waiting for labels") for line in lines), lines
    # each step lasted about as long as its labels took (2-6 h after the cohort), never past the 6 h deadline
    for pct in (5, 20, 50, 100):
        at = [pd.Timestamp(s["analysed_at"]) for s in result.steps if s["percent"] == pct]
        assert pd.Timedelta(hours=2) <= at[-1] - at[0] <= pd.Timedelta(hours=7), (pct, at)


def test_bad_challenger_is_rolled_back_on_the_estimate_before_any_label(world: SimpleNamespace, tmp_path: Path) -> None:
    result, lines = canary(world, "3", tmp_path)
    assert result.outcome == "rolled_back", lines
    assert result.evidence == "estimate" and "accuracy estimated drop" in result.reason, lines
    assert all(s["labels"]["labelled"] == 0 for s in result.steps), "decided before any label could arrive (2 h)"
    assert pd.Timestamp(result.steps[-1]["analysed_at"]) - START <= pd.Timedelta(hours=2)

"""The demo's cohort path: a specialist trained on one cohort's recent rows, canaried on that cohort's traffic only.

:class:`driftloop.demo.loop.Demo` hands a ``cohort`` retrain decision to
:func:`cohort_retrain_and_roll_out`: the train pipeline (the same one, strategy ``cohort``)
registers the specialist as ``challenger-<cohort>`` (the one alias rule,
:func:`components.training.workflow.register_and_alias`); the canary is
:func:`serving.canary.rollout.roll_out` with the backend splitting only the cohort's rows,
the registry seen from the cohort and the labels of the cohort's requests
(:mod:`serving.canary.cohort`). After a global promotion :func:`review_after_promotion`
retires the specialists the new global champion has caught up with and removes their routes.

Summary fields: every retrain event gets :func:`retrain_lineage` (``training_rows``,
``training_cohorts``, ``cohort``), every rollout ``cohort`` and
``requests_by_cohort`` (:func:`arm_requests`: per arm, the requests it served by cohort).

>>> arm_requests({"3": {"casual": 40, "power": 90}, "4": {"casual": 12}}, "3", "4")
{'champion': {'casual': 40, 'power': 90}, 'challenger': {'casual': 12}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


def retrain_lineage(registry: Any, model: str, decision_key: str) -> dict[str, Any]:
    """What the version the decision ``decision_key`` registered was trained on (empty if none).

    ``training_rows`` and ``holdout_rows``, ``training_cohorts`` (the cohorts present in
    them), ``cohort`` (a specialist's, else None), ``training_window`` (``{start, end}`` of
    the rows' time range) and ``gate_passed``.
    """
    found = [v for v in registry.versions(model) if decision_key and v.tags.get("driftloop.decision_id") == decision_key]
    if not found:
        return {}
    version = min(found, key=lambda v: v.version)
    start, _, end = version.tags.get("driftloop.window", "").partition("/")
    return {"version": str(version.version), "training_rows": int(version.params.get("train_rows", 0)),
            "holdout_rows": int(version.params.get("holdout_rows", 0)),
            "training_cohorts": json.loads(version.tags.get("driftloop.training_cohorts", "[]")),
            "cohort": version.tags.get("driftloop.cohort") or None, "training_window": {"start": start, "end": end},
            "gate_passed": version.tags.get("driftloop.gate_passed") == "true"}


def cohort_figures(rows: pd.DataFrame, column: str | None, label: str, prediction: str) -> dict[str, dict[str, Any]]:
    """Per cohort of a period's served rows: ``rows``, ``labelled``, ``ctr`` (observed click rate),
    ``predicted_ctr`` (the serving model's mean prediction) and ``versions`` (rows per model version).

    >>> rows = pd.DataFrame({"c": ["a", "a", "b"], "y": [1, None, 0], "p": [0.4, 0.2, 0.1], "model_version": ["1", "2", "1"]})
    >>> cohort_figures(rows, "c", "y", "p")["a"]
    {'rows': 2, 'labelled': 1, 'ctr': 1.0, 'predicted_ctr': 0.3, 'versions': {'1': 1, '2': 1}}
    """
    if not column or column not in rows.columns:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for cohort, group in rows.groupby(rows[column].astype(str)):
        clicks = pd.to_numeric(group[label], errors="coerce").dropna()
        out[str(cohort)] = {"rows": len(group), "labelled": len(clicks), "ctr": round(float(clicks.mean()), 4) if len(clicks) else None,
                            "predicted_ctr": round(float(group[prediction].mean()), 4),
                            "versions": {str(k): int(n) for k, n in group["model_version"].astype(str).value_counts().sort_index().items()}}
    return out


def arm_requests(by_version: dict[str, dict[str, int]], champion: str | None, challenger: str) -> dict[str, dict[str, int]]:
    """Per arm (``champion``, ``challenger``), the requests by cohort (from :func:`serving.canary.cohort.requests_by_cohort`)."""
    return {"champion": dict(by_version.get(str(champion), {})), "challenger": dict(by_version.get(str(challenger), {}))}


def rollout_requests(log_dir: Path, model: str, column: str | None, since: pd.Timestamp, champion: str | None, challenger: str) -> dict[str, Any]:
    """:func:`arm_requests` of the prediction log since ``since`` (the rollout's start)."""
    from serving.canary.cohort import requests_by_cohort
    from serving.prediction_log import read_log

    if not column:
        return {}
    return arm_requests(requests_by_cohort(read_log(log_dir, model, start=since), column), champion, challenger)


def cohort_retrain_and_roll_out(demo: Any, decision: dict[str, Any], end: pd.Timestamp, name: str, live: pd.DataFrame,
                                backend: Any, traffic: Any, log_dir: Path, index: int) -> None:
    """Train the cohort's specialist; canary it on the cohort's traffic; record the rollout in the demo summary."""
    from serving.canary.rollout import roll_out
    from serving.prometheus import DirectSource

    model, cohort, column = demo.policy.model, decision["cohort"], demo.policy.segment_column
    reg = demo.registry()
    view = reg.for_cohort(cohort)
    before = view.get(model, "challenger")
    passed = demo.train(end, "cohort", decision.get("window") or "", cohort, decision.get("idempotency_key") or "")
    challenger = view.get(model, "challenger")
    if not passed or challenger is None or (before is not None and challenger.version == before.version):
        demo.say(f"{name}: the {cohort} specialist did not pass the gate on the cohort's holdout; no rollout")
        demo.summary["events"].append({"period": name, "action": "gate_failed", "strategy": "cohort", "cohort": cohort,
                                       "reasons": getattr(demo, "last_gate_reasons", [])})
        return
    incumbent = view.get(model, "champion")
    lines: list[str] = []

    def step_line(line: str) -> None:
        lines.append(line)
        demo.say(f"  canary[{cohort}] {line}")

    backend.canary_cohort, backend.challenger_args = cohort, []
    since = pd.Timestamp.now(tz="UTC")
    clock, labels = demo.canary_feed(live, index, log_dir, traffic, end, cohort=cohort)
    try:
        result = roll_out(demo.rollout_policy, demo.settings, backend, challenger_uri=f"models:/{model}/{challenger.version}",
                          labels=labels, log_dir=log_dir, registry=view,
                          metrics_source=DirectSource(backend.metrics_targets), sleep=clock.sleep, clock=clock.time,
                          on_step=step_line, actor="driftloop-demo")
    finally:
        backend.canary_cohort = None
    record = result.to_dict()
    record.update({"period": name, "cohort": cohort, "from_version": str(incumbent.version) if incumbent else None,
                   "to_version": str(challenger.version), "bad_challenger": False, "log": lines,
                   "requests_by_cohort": rollout_requests(log_dir, model, column, since, record.get("champion_version"), str(challenger.version))})
    demo.summary["rollouts"].append(record)


def review_after_promotion(demo: Any, fresh: pd.DataFrame, backend: Any) -> list[dict[str, Any]]:
    """After a global promotion: retire the specialists the new global champion is at least as good as on ``fresh`` rows."""
    from components.training.workflow import review_specialists

    reviewed = review_specialists(demo.policy, fresh, demo.registry(), actor="driftloop-demo")
    for entry in reviewed:
        if entry["retired"]:
            backend.remove_route(entry["cohort"])
            demo.say(f"  retired the {entry['cohort']} specialist v{entry['specialist']}: {entry['reason']}")
            demo.summary["events"].append({"action": "retire_specialist", **entry})
    return reviewed

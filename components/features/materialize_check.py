"""Materialize a window of a feature view and check it in the same run.

:func:`check_view` reads the view's rows with event times in ``[start, end)`` from the
offline store (the parquet source locally, the scenario's PostgreSQL table in production),
profiles the reference window named in ``feature_checks.yaml`` (cached in the work
directory) and checks the batch (:func:`~components.features.views_monitor.check_batch`).
:func:`materialize_and_check` then fans a drifted or failing view out to the models that
read it (:mod:`components.upstream`) and materializes the window into the online store,
unless a quality check failed and the view's ``on_fail`` is ``block``. The CLI
(``driftloop features check``), the KFP step and the demo call these two functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from components.errors import ConfigError, DataError
from components.features import tables
from components.features.config import rendered_settings, table_name
from components.features.store import (
    _servers,
    features_path,
    materialize,
    offline_config,
    open_store,
)
from components.features.view_checks import CHECKS_FILE, ViewCheck, view_check
from components.features.views_monitor import TIMESTAMP, ViewProfile, ViewReport, check_batch
from components.settings import Settings


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def checks_path(settings: Settings) -> Path:
    """The feature checks declared beside the Feast definitions (``<feature_repo>/feature_checks.yaml``)."""
    return settings.feature_repo / CHECKS_FILE


def view_columns(view: str, settings: Settings) -> tuple[str, list[str], list[str]]:
    """(scenario, numeric features, categorical features) of a registered feature view."""
    store = open_store(settings)
    try:
        fv = store.get_feature_view(view)
    except Exception:
        raise ConfigError(f"feature view {view!r} is not registered", fix="run: driftloop features apply (and check the view name)") from None
    scenario = fv.tags.get("scenario") or view.removesuffix("_features")
    numeric = [f.name for f in fv.features if "String" not in str(f.dtype)]
    categorical = [f.name for f in fv.features if "String" in str(f.dtype)]
    return scenario, numeric, categorical


def read_view_rows(scenario: str, start: Any, end: Any, settings: Settings) -> pd.DataFrame:
    """Offline rows of ``scenario``'s feature source with event times in ``[start, end)``."""
    lo, hi = _utc(start), _utc(end)
    if settings.feast_config == "production":
        config = offline_config(settings)
        assert config is not None  # rendering with the offline store raised if it could not
        table = table_name(rendered_settings(settings)["project"], scenario, "features")
        with _servers(f"read the {scenario} features"):
            rows = tables.read_table(config, table, f'"{TIMESTAMP}" >= %s AND "{TIMESTAMP}" < %s', [lo, hi])
        if rows is None:
            raise DataError(f"no features ingested for {scenario!r} (table {table} is missing)", fix=f"run: driftloop features ingest {scenario}")
        return rows.sort_values(TIMESTAMP, kind="stable", ignore_index=True)
    path = features_path(scenario, settings)
    if not path.exists():
        raise DataError(f"no features ingested for {scenario!r} at {path}", fix=f"run: driftloop features ingest {scenario}")
    rows = pd.read_parquet(path, filters=[(TIMESTAMP, ">=", lo), (TIMESTAMP, "<", hi)])
    return rows.sort_values(TIMESTAMP, kind="stable", ignore_index=True)


def _view_dir(view: str, settings: Settings) -> Path:
    return settings.workdir / "feature_views" / view


def reference_profile(view: str, check: ViewCheck, settings: Settings) -> ViewProfile:
    """The view's reference profile; its rows are kept in the work directory so later batches compare with the same sample."""
    scenario, numeric, categorical = view_columns(view, settings)
    start, end = check.reference.start, check.reference.end
    cache = _view_dir(view, settings) / "reference.parquet"
    meta = cache.with_suffix(".json")
    key = {"start": str(start), "end": str(end), "numeric": numeric, "categorical": categorical}
    if cache.exists() and meta.exists() and json.loads(meta.read_text()) == key:
        rows = pd.read_parquet(cache)
    else:
        rows = read_view_rows(scenario, start, end, settings)
        if len(rows) < check.min_rows:
            raise DataError(f"the reference window {start}..{end} of {view} holds {len(rows)} rows (< min_rows {check.min_rows})",
                            fix=f"move {view}.reference in {CHECKS_FILE} to a window with data, or ingest it first")
        cache.parent.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(cache, index=False)
        meta.write_text(json.dumps(key))
    return ViewProfile.fit(rows, numeric, categorical, check, start, end)


def check_view(view: str, start: Any, end: Any, settings: Settings, checks: str | Path | None = None) -> ViewReport:
    """Check the offline rows of ``view`` in ``[start, end)`` against its reference (nothing is materialized)."""
    if _utc(start) >= _utc(end):
        raise ConfigError(f"--start {start} must be before --end {end}", fix="give a window with start < end")
    check = view_check(view, checks or checks_path(settings))
    profile = reference_profile(view, check, settings)
    scenario, _, _ = view_columns(view, settings)
    return check_batch(read_view_rows(scenario, start, end, settings), profile, check, start, end, view=view)


def fan_out(report: ViewReport, settings: Settings, policy_dir: Path | None = None) -> ViewReport:
    """Record one upstream event naming every model that reads a drifted or failing feature of the view."""
    from components.upstream import (
        feature_services,
        model_services,
        readers_of,
        record_upstream_event,
    )

    if not report.affected_features:
        return report
    readers = readers_of(report.view, feature_services(settings), model_services(policy_dir))
    detail = {"quality_failed": [q.summary() for q in report.failed_quality], "blocked": report.blocked}
    event = record_upstream_event(report.view, report.affected_features, readers, report.window, settings, detail)
    report.models = event["models"]
    return report


def materialize_and_check(view: str, start: Any, end: Any, settings: Settings, checks: str | Path | None = None,
                          policy_dir: Path | None = None) -> ViewReport:
    """Check the window, tell the affected models, and materialize it unless the check blocks it.

    Materializes exactly the rows checked (event times in ``[start, end)``); the report is
    written to ``<workdir>/feature_views/<view>/last_report.json``.
    """
    report = check_view(view, start, end, settings, checks)
    report.blocked = not report.passed and report.on_fail == "block"
    fan_out(report, settings, policy_dir)
    if not report.blocked:
        scenario, _, _ = view_columns(view, settings)
        # Feast's window is closed on both ends; stop just before `end` so the next batch owns it
        materialize(scenario, start, _utc(end) - pd.Timedelta(microseconds=1), settings)
    out = _view_dir(view, settings) / "last_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.to_json())
    return report


__all__ = ["check_view", "checks_path", "fan_out", "materialize_and_check", "read_view_rows", "reference_profile", "view_columns"]

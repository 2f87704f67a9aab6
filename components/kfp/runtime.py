"""Helpers the component bodies call inside a task: settings, policy, data windows, frames.

Kept free of ``kfp`` so they are plain, testable functions; the component wrappers in
this package stay a few lines each (parse inputs, call the library, write outputs).

>>> policy = resolve_policy("churn")
>>> policy.model, policy.schedule
('churn', '0 6 1 * *')
>>> resolve_policy(policy_text("churn")).model
'churn'
>>> settings_for("/tmp/dl-doc").workdir.as_posix()
'/tmp/dl-doc'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.errors import ConfigError, DataError
from driftloop.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from components.policy import Policy


def settings_for(workdir: str = "") -> Settings:
    """Settings from the task's environment, rooted at ``workdir`` when one is given.

    The work directory is a pipeline parameter so a local run can point every task at the
    same state; on a cluster it stays empty and the pod's ``DRIFTLOOP_*`` env decides.
    An explicit ``MLFLOW_TRACKING_URI`` / ``DRIFTLOOP_MLFLOW_TRACKING_URI`` still wins.
    """
    env = dict(os.environ)
    if workdir:
        env["DRIFTLOOP_WORKDIR"] = workdir
    return Settings.from_env(env)


def resolve_policy(policy: str) -> Policy:
    """A policy from a bundled name (``churn``), a path to a YAML file, or the YAML text itself."""
    import yaml

    from components.policy import load_policy, policy_from_dict

    text = policy.strip()
    if not text:
        raise ConfigError("the pipeline parameter 'policy' is empty", fix="pass a policy name such as 'churn' or the policy YAML text")
    if "\n" in text or text.startswith("{"):
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"pipeline parameter 'policy' is not valid YAML: {exc}", fix="check indentation and quoting") from None
        if not isinstance(raw, dict):
            raise ConfigError("pipeline parameter 'policy' must be a YAML mapping", fix="start it with 'model: <name>'")
        return policy_from_dict(raw, source="policy parameter")
    return load_policy(text)


def policy_text(name_or_path: str) -> str:
    """The YAML text of a bundled policy or policy file, validated, to pass as a parameter.

    >>> policy_text("fraud").splitlines()[0].startswith("#")
    True
    """
    from components.policy import load_policy
    from driftloop.settings import POLICY_DIR

    load_policy(name_or_path)  # validate first: bad policies fail before any submit
    path = Path(name_or_path)
    if not path.exists():
        path = POLICY_DIR / f"{name_or_path}.yaml"
    return path.read_text()


def parse_time(text: str, field: str) -> pd.Timestamp | None:
    """An ISO timestamp parameter as UTC; empty means "not set" (the latest data).

    >>> parse_time("2025-07-01", "start").isoformat()
    '2025-07-01T00:00:00+00:00'
    >>> parse_time("", "end") is None
    True
    """
    import pandas as pd

    if not text:
        return None
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(f"pipeline parameter {field!r} = {text!r} is not a timestamp", fix="use ISO format, e.g. 2025-07-01T00:00:00Z") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def read_source(source: str, policy: Policy) -> pd.DataFrame:
    """Rows from a parquet file, a directory of parquet files, or ``scenario:<name>[:rows]``."""
    import pandas as pd

    if source.startswith("scenario:"):
        from components.data.scenarios import generate

        _, name, *rest = source.split(":")
        return generate(name, rows=int(rest[0]) if rest and rest[0] else None, seed=0)
    path = Path(source)
    if not path.exists():
        raise DataError(f"data source {source!r} does not exist", fix="write it with 'driftloop scenario' or pass scenario:<name>")
    frame = pd.read_parquet(path)
    if policy.timestamp not in frame.columns:
        raise DataError(f"data source {source!r} has no timestamp column {policy.timestamp!r}", fix="set policy.timestamp to the event-time column")
    return frame


def select_window(frame: pd.DataFrame, policy: Policy, start: str, end: str) -> pd.DataFrame:
    """Rows with ``start <= timestamp < end`` (either bound may be empty = open).

    >>> import pandas as pd
    >>> p = resolve_policy("churn")
    >>> f = pd.DataFrame({"event_timestamp": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01"], utc=True)})
    >>> len(select_window(f, p, "2025-02-01", ""))
    2
    """
    import pandas as pd

    ts = pd.to_datetime(frame[policy.timestamp], utc=True)
    mask = pd.Series(True, index=frame.index)
    lo, hi = parse_time(start, "start"), parse_time(end, "end")
    if lo is not None:
        mask &= ts >= lo
    if hi is not None:
        mask &= ts < hi
    return frame.loc[mask].reset_index(drop=True)


def write_frame(frame: pd.DataFrame, path: str) -> None:
    """Write a data artifact as parquet (the artifact path may not have a suffix)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def read_frame(path: str) -> pd.DataFrame:
    """Read a data artifact written by :func:`write_frame`."""
    import pandas as pd

    return pd.read_parquet(path)


def validate_frame(frame: pd.DataFrame, policy: Policy, min_rows: int = 1, need_label: bool = True) -> dict[str, float]:
    """Check a data window against the policy; return figures to log as task metrics.

    Missing columns and an empty window raise :class:`DataError` naming the column and fix.

    >>> import pandas as pd
    >>> p = resolve_policy("churn")
    >>> f = pd.DataFrame({c: [1, None] for c in [p.timestamp, p.label, *p.all_features]})
    >>> validate_frame(f, p)["max_null_share"]
    0.5
    >>> validate_frame(f.drop(columns=["region"]), p)
    Traceback (most recent call last):
    ...
    driftloop.errors.DataError: data lacks columns ['region'] that the policy names (fix: ...)
    """
    columns = [policy.timestamp, *policy.all_features] + ([policy.label] if need_label else [])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"data lacks columns {missing} that the policy names", fix="add them to the feature view / data source or remove them from the policy")
    if len(frame) < min_rows:
        raise DataError(f"data window has {len(frame)} rows, fewer than the {min_rows} required", fix="widen the window (start/end) or check the data source")
    nulls = frame[columns].isna().mean()
    figures = {"rows": float(len(frame)), "max_null_share": float(nulls.max()) if len(frame) else 0.0}
    if need_label and len(frame):
        figures["label_rate"] = float(frame[policy.label].astype(float).mean())
    return figures


def write_text(path: str, text: str) -> None:
    """Write an artifact's text, creating its directory."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def read_text(path: str) -> str:
    """Read an artifact's text."""
    return Path(path).read_text()


def monitor_report(policy: Policy, reference: pd.DataFrame, current: pd.DataFrame, model_version: str, settings: Settings) -> Any:
    """Run the policy's monitors (components.monitor.engine) on the two windows.

    Windows without a prediction column are scored by the served model (``model_version``,
    default the champion), whose registered baseline metrics the performance monitors use.
    """
    from components.monitor.engine import run_monitors

    baseline = None
    if policy.prediction not in reference.columns or policy.prediction not in current.columns:
        from components.registry import CHAMPION, ModelRegistry

        registry = ModelRegistry(settings)
        ref = model_version or CHAMPION
        if not ref.isdigit():
            info = registry.get(policy.model, ref)
            if info is None:
                raise DataError(f"the data has no {policy.prediction!r} column and model {policy.model!r} has no {ref}", fix="train and promote a model first, or pass data with predictions")
            ref = str(info.version)
        model = registry.load(policy.model, ref)
        baseline = registry.baseline_metrics(policy.model, ref)
        reference, current = (f if policy.prediction in f.columns else f.assign(**{policy.prediction: model.predict(f[policy.all_features])}) for f in (reference, current))
        model_version = ref
    return run_monitors(policy, reference, current, baseline=baseline, model_version=model_version or None)


def report_html(report: Any) -> str:
    """The monitor report as a self-contained HTML page (components.monitor.html)."""
    from components.monitor import html

    return html.render_html(report)


def monitor_metrics(report: Any) -> dict[str, float]:
    """One dashboard metric per monitor (1 fired / 0 quiet) plus the current window's rows.

    >>> from components.monitor.report import MonitorReport
    >>> r = MonitorReport("churn", "1", {"rows": 5}, [{"name": "acc", "fired": True}], {}, "now")
    >>> monitor_metrics(r)
    {'rows': 5.0, 'fired.acc': 1.0}
    """
    figures = {"rows": float(report.window.get("rows") or 0)}
    for m in report.monitors:
        figures[f"fired.{m['name']}"] = 1.0 if m.get("fired") else 0.0
    return figures


def decide_once(policy: Policy, report_json: str, settings: Settings, emergency: bool = False) -> tuple[Any, bool]:
    """The report's decision and whether it is new: a retrain is claimed in the ledger once.

    ``emergency`` (a manual trigger) retrains now with the policy's emergency action on the
    newest data, whatever the monitors said; it is still recorded once per window.
    """
    from components.decision import Decision, DecisionLedger, decide
    from components.monitor.report import MonitorReport

    report = MonitorReport.from_json(report_json)
    if emergency:
        decision = emergency_decision(policy, report.model_version, report.window, report.fired_monitors())
    elif report.decision.get("idempotency_key"):
        decision = Decision.from_dict(report.decision)
    else:
        decision = decide(policy, report.monitors, report.model_version, report.window)
    if decision.action != "retrain":
        return decision, True
    return decision, DecisionLedger(settings.workdir / "decisions.db").record(decision)


def emergency_decision(policy: Policy, model_version: str | None, window: dict[str, Any], fired: list[str]) -> Any:
    """A retrain decision with strategy ``emergency`` from a manual trigger.

    The policy's emergency action gives the training window and ``min_rows``; without one,
    the training set's default (ten policy periods) applies.

    >>> d = emergency_decision(resolve_policy("fraud"), "4", {"start": "a", "end": "b"}, [])
    >>> d.action, d.strategy, d.window, d.min_rows, d.reasons
    ('retrain', 'emergency', '48h', 2000, ('manual emergency trigger',))
    """
    from components.decision import Decision, idempotency_key

    action = next((a for a in policy.actions if a.action == "retrain" and a.strategy == "emergency"), None)
    data_window = (_str(window.get("start")), _str(window.get("end")))
    train_window = action.window if action else None
    key = idempotency_key(policy.model, model_version, data_window, "retrain", "emergency", train_window, None)
    reasons = ("manual emergency trigger", *(f"{n}: fired" for n in fired))
    return Decision("retrain", "emergency", train_window, None, reasons, tuple(fired), (), policy.model, model_version, data_window, key,
                    min_rows=action.min_rows if action else None, priority=action.priority if action else None)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def decision_markdown(decision: Any, fresh: bool) -> str:
    """The decision and its reasons as Markdown for the KFP dashboard.

    >>> from components.decision import decide
    >>> from components.policy import policy_from_dict
    >>> policy = policy_from_dict({"model": "m", "entity": "id", "label": "y", "features": ["x"],
    ...     "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.85}],
    ...     "actions": [{"when": ["acc"], "strategy": "full"}]})
    >>> d = decide(policy, [{"name": "acc", "fired": True, "summary": "accuracy 0.8 < 0.85"}], "1", {})
    >>> print(decision_markdown(d, fresh=True).splitlines()[0])
    # Decision for m: retrain (full)
    """
    head = f"# Decision for {decision.model}: {decision.action}" + (f" ({decision.strategy})" if decision.strategy else "")
    lines = [head, ""]
    if not fresh:
        lines += [f"Already acted on (key `{decision.idempotency_key}`): not retraining again.", ""]
    lines += [f"- model version: {decision.model_version or '-'}", f"- data window: {decision.data_window[0]} .. {decision.data_window[1]}"]
    if decision.window:
        lines.append(f"- training window: {decision.window}")
    if decision.cohort:
        lines.append(f"- cohort: {decision.cohort}")
    lines += ["", "## Reasons", ""] + ([f"- {r}" for r in decision.reasons] or ["- no monitor fired"])
    return "\n".join(lines) + "\n"


_PERIOD_OFFSET = {"hour": {"hours": 1}, "day": {"days": 1}, "month": {"months": 1}}


def period_start(ts: pd.Timestamp, period: str) -> pd.Timestamp:
    """The start of the policy period holding ``ts``.

    >>> period_start(pd_ts("2025-03-02T10:30:00Z"), "month").isoformat()
    '2025-03-01T00:00:00+00:00'
    >>> period_start(pd_ts("2025-03-02T10:30:00Z"), "hour").isoformat()
    '2025-03-02T10:00:00+00:00'
    """
    if period == "month":
        return ts.normalize().replace(day=1)
    return ts.floor("h" if period == "hour" else "D")


def pd_ts(text: str) -> pd.Timestamp:
    """A UTC timestamp from ISO text (for examples and tests)."""
    import pandas as pd

    return pd.Timestamp(text).tz_convert("UTC")


def resolve_windows(policy: Policy, latest: pd.Timestamp, current_start: str = "", current_end: str = "",
                    reference_start: str = "", reference_end: str = "") -> dict[str, str]:
    """Fill empty window bounds so a scheduled run monitors the latest period.

    ``current_end`` defaults to the end of the policy period holding ``latest``,
    ``current_start`` to one period before it, ``reference_end`` to ``current_start``; an
    empty ``reference_start`` stays open (all history).

    >>> w = resolve_windows(resolve_policy("fraud"), pd_ts("2025-03-02T10:30:00Z"))
    >>> w["current_start"], w["current_end"], w["reference_end"]
    ('2025-03-02T10:00:00+00:00', '2025-03-02T11:00:00+00:00', '2025-03-02T10:00:00+00:00')
    """
    import pandas as pd

    step = pd.DateOffset(**_PERIOD_OFFSET[policy.period])
    end = parse_time(current_end, "current_end") or (period_start(latest, policy.period) + step)
    start = parse_time(current_start, "current_start") or (end - step)
    ref_end = parse_time(reference_end, "reference_end") or start
    ref_start = parse_time(reference_start, "reference_start")
    if ref_end > start:
        raise ConfigError(f"reference window ends at {ref_end} after the current window starts at {start}", fix="make reference_end <= current_start")
    return {"current_start": start.isoformat(), "current_end": end.isoformat(), "reference_start": ref_start.isoformat() if ref_start is not None else "",
            "reference_end": ref_end.isoformat()}


def latest_timestamp(policy: Policy, source: str) -> pd.Timestamp:
    """The newest event time in ``source``; for the feature store, a time in the last complete period."""
    import pandas as pd

    if not source:
        # A scheduled run at the start of a period monitors the period that just ended.
        return pd.Timestamp.now(tz="UTC") - pd.DateOffset(**_PERIOD_OFFSET[policy.period])
    frame = read_source(source, policy)
    return pd.to_datetime(frame[policy.timestamp], utc=True).max()


WEIGHT_COLUMN = "_driftloop_weight"  # cohort up-weighting travels with the training rows


def training_data(policy: Policy, strategy: str, end: str, window: str, cohort: str, source: str, settings: Settings) -> Any:
    """The training set for a strategy (components.training.datasets); empty ``end`` = the newest data."""
    from components.training.datasets import build_training_set

    end_ts = parse_time(end, "end") or latest_timestamp(policy, source)
    frame = read_source(source, policy) if source else None
    return build_training_set(policy, strategy, end_ts, window=window or None, cohort=cohort or None, settings=settings, source=frame)


def split_weights(frame: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """Training rows and their sample weights (``None`` when the rows carry none)."""
    if WEIGHT_COLUMN not in frame.columns:
        return frame, None
    return frame.drop(columns=[WEIGHT_COLUMN]), frame[WEIGHT_COLUMN].to_numpy()


def save_model(model: Any, path: str) -> None:
    """Pickle a fitted :class:`~components.training.trainers.TrainedModel` into a KFP Model artifact."""
    import joblib

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)


def load_model(path: str) -> Any:
    """Read a model written by :func:`save_model`."""
    import joblib

    return joblib.load(path)


def roc_points(y: Any, p: Any, points: int = 50) -> tuple[list[float], list[float], list[float]]:
    """A thinned ROC curve (fpr, tpr, threshold) for the KFP ClassificationMetrics artifact.

    >>> fpr, tpr, thr = roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr[0], tpr[-1], len(fpr) == len(tpr) == len(thr)
    (0.0, 1.0, True)
    """
    import numpy as np
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(np.asarray(y, dtype=int), np.asarray(p, dtype=float))
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).astype(int))
    thr = np.clip(thr[keep], 0.0, 1.0)  # sklearn's first threshold is +inf
    return [float(x) for x in fpr[keep]], [float(x) for x in tpr[keep]], [float(x) for x in thr]


def confusion(y: Any, p: Any, threshold: float = 0.5) -> list[list[int]]:
    """The 2x2 confusion matrix (rows: true 0/1, columns: predicted 0/1).

    >>> confusion([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.2])
    [[1, 1], [1, 1]]
    """
    import numpy as np

    y, pred = np.asarray(y, dtype=int), (np.asarray(p, dtype=float) >= threshold).astype(int)
    return [[int(((y == t) & (pred == q)).sum()) for q in (0, 1)] for t in (0, 1)]


def verdict_markdown(verdict: Any) -> str:
    """The champion/challenger gate's verdict as Markdown."""
    head = f"# Gate on {verdict.metric}: {'PASSED' if verdict.passed else 'FAILED'}"
    return "\n".join([head, "", *(f"- {r}" for r in verdict.reasons)]) + "\n"


def champion(policy: Policy, settings: Settings) -> Any:
    """The registered champion (alias ``champion``) as a scorer, or ``None`` before the first one."""
    from components.registry import CHAMPION, ModelRegistry

    registry = ModelRegistry(settings)
    return registry.load(policy.model, CHAMPION) if registry.get(policy.model, CHAMPION) is not None else None


def register_challenger(policy: Policy, model: Any, train: pd.DataFrame, holdout: pd.DataFrame, window: str, strategy: str, cohort: str,
                        verdict: dict[str, Any], decision_key: str, settings: Settings) -> Any:
    """Register the gated model with its lineage (idempotent per window/strategy/decision) as ``challenger``."""
    import pandas as pd

    from components.registry import ModelRegistry
    from components.training.datasets import TrainingData
    from components.training.evaluate import Verdict

    rows, weights = split_weights(train)
    start, _, end = window.partition("/")
    data = TrainingData(rows, holdout, pd.Timestamp(start), pd.Timestamp(end), strategy, cohort or None, weights)
    gate = Verdict(passed=bool(verdict["passed"]), reasons=tuple(verdict["reasons"]), metric=str(verdict["metric"]), challenger=verdict["challenger"],
                   champion=verdict.get("champion"), failed_segments=tuple(verdict.get("failed_segments") or ()))
    registry = ModelRegistry(settings)
    info = registry.register(policy, model, data, gate, decision_id=decision_key or None)
    return registry.set_challenger(policy.model, info.version, actor="kfp", reason=f"gate passed on {gate.metric}; decision {decision_key or '-'}")


def canary_rollout(policy: Policy, settings: Settings, backend: str, namespace: str = "default", isvc: str = "", replay: str = "",
                   interval_seconds: float = 0.0, on_step: Any = None) -> Any:
    """Roll the challenger out by the policy's canary steps (serving.canary); promote or roll back.

    ``backend`` "kubernetes" patches the InferenceService and reads Prometheus; "local"
    starts the champion, challenger and router here and replays ``replay`` (a parquet path
    or ``scenario:<name>``) through it as live traffic with delayed labels.
    """
    import logging

    from components.registry import ModelRegistry
    from serving.canary.controller import run_rollout
    from serving.prometheus import source_from_settings

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would bury the step lines
    if interval_seconds > 0:
        policy = policy.model_copy(update={"rollout": policy.rollout.model_copy(update={"interval_seconds": interval_seconds})})
    registry = ModelRegistry(settings)
    log_dir = settings.workdir / "predictions"
    if backend == "kubernetes":
        from serving.canary.k8s import KubernetesBackend

        if not settings.prometheus_url:
            raise ConfigError("the Kubernetes canary reads metrics from Prometheus, and none is configured", fix="set DRIFTLOOP_PROMETHEUS_URL (the driftloop-settings ConfigMap)")
        k8s = KubernetesBackend(isvc or policy.model, namespace)
        return run_rollout(policy, k8s, source_from_settings(settings.prometheus_url, k8s.metrics_targets), registry, on_step=on_step, actor="kfp")
    if backend != "local":
        raise ConfigError(f"unknown canary backend {backend!r}", fix="use kubernetes or local")
    if not replay:
        raise ConfigError("a local canary needs traffic", fix="pass replay=<parquet path or scenario:<name>> with features and labels")
    from serving.canary.local import LocalBackend
    from serving.traffic import ReplayTraffic

    frame = read_source(replay, policy)
    columns = [*policy.all_features, *(c for c in (policy.entity, policy.segment_column) if c and c in frame.columns and c not in policy.all_features)]
    local = LocalBackend(policy.model, f"models:/{policy.model}@champion", tracking_uri=settings.mlflow_tracking_uri, log_dir=log_dir,
                         work_dir=settings.workdir / "servers")
    traffic = None
    try:
        local.start()
        traffic = ReplayTraffic(local.url, policy.model, frame, columns, label=policy.label).start()
        return run_rollout(policy, local, source_from_settings(settings.prometheus_url, local.metrics_targets), registry,
                           labels=traffic.labels, log_dir=log_dir, on_step=on_step, actor="kfp")
    finally:
        if traffic is not None:
            traffic.stop()
        local.close()


def rollout_markdown(result: Any) -> str:
    """The canary's outcome and one line per analysed step, as Markdown."""
    lines = [f"# Canary: {result.outcome.replace('_', ' ')}", "", f"{result.reason}", "",
             f"champion v{result.champion_version}, challenger v{result.challenger_version}", "", "| traffic | decision | reasons |", "| --- | --- | --- |"]
    lines += [f"| {s['percent']}% | {s['decision']} | {'; '.join(s['reasons']) or '-'} |" for s in result.steps]
    return "\n".join(lines) + "\n"

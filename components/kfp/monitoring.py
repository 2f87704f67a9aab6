"""Monitoring helpers for the KFP steps: run the monitors (scoring with the champion if needed), decide once, render.

>>> from components.monitor.report import MonitorReport
>>> monitor_metrics(MonitorReport("churn", "1", {"rows": 3}, [{"name": "acc", "fired": False}], {}, "now"))
{'rows': 3.0, 'fired.acc': 0.0}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.errors import DataError
from components.kfp.runtime import resolve_policy  # noqa: F401 (doctests)
from components.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from components.policy import Policy


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

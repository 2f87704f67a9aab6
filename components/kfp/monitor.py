"""KFP steps for monitoring: run the policy's monitors, then decide (a retrain once per window).

>>> sorted(run_monitor.component_spec.outputs)
['Output', 'metrics', 'report', 'report_html']
>>> sorted(decide.component_spec.outputs)
['action', 'cohort', 'decision_md', 'end', 'idempotency_key', 'strategy', 'window']
"""

from typing import NamedTuple

from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Output

from components.kfp import IMAGE, component

__all__ = ["IMAGE", "decide", "run_monitor"]


@component
def run_monitor(policy: str, reference: Input[Dataset], current: Input[Dataset], model_version: str, workdir: str,
                report: Output[Artifact], report_html: Output[HTML], metrics: Output[Metrics]) -> str:
    """Run every monitor of the policy (scoring with the registered model if needed); write the report, its HTML and one metric per monitor."""
    from components.kfp import runtime
    from components.monitor.html import render_html
    from components.scoring import monitor_metrics, monitor_report

    rep = monitor_report(runtime.resolve_policy(policy), runtime.read_frame(reference.path), runtime.read_frame(current.path), model_version or None,
                         runtime.settings_for(workdir))
    runtime.write_text(report.path, rep.to_json())
    runtime.write_text(report_html.path, render_html(rep))
    for name, value in monitor_metrics(rep).items():
        metrics.log_metric(name, value)
    return ",".join(rep.fired_monitors())


@component
def decide(policy: str, report: Input[Artifact], window_end: str, workdir: str, emergency: bool, decision_md: Output[Markdown]) -> NamedTuple(  # type: ignore[valid-type]
        "DecisionOutputs", [("action", str), ("strategy", str), ("window", str), ("cohort", str), ("end", str), ("idempotency_key", str)]):
    """Decide from the report (or retrain now if ``emergency``); a retrain already acted on for this window becomes "none"."""
    from collections import namedtuple

    from components.decision import DecisionLedger, decide_once, decision_markdown
    from components.kfp import runtime
    from components.monitor.results import MonitorReport

    ledger = DecisionLedger(runtime.settings_for(workdir).workdir / "decisions.db")
    d, fresh = decide_once(runtime.resolve_policy(policy), MonitorReport.from_json(runtime.read_text(report.path)), ledger, emergency)
    runtime.write_text(decision_md.path, decision_markdown(d, fresh))
    action = d.action if fresh else "none"
    DecisionOutputs = namedtuple("DecisionOutputs", ["action", "strategy", "window", "cohort", "end", "idempotency_key"])  # noqa: N806
    # Retrain on data up to the monitored window's end (labels known by then); an
    # emergency on the newest data: an empty end means "latest" downstream.
    end = "" if emergency else window_end
    return DecisionOutputs(action, d.strategy or "", d.window or "", d.cohort or "", end, d.idempotency_key)

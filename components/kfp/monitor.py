"""KFP steps for monitoring: run the policy's monitors, then decide (a retrain once per window).

>>> sorted(run_monitor.component_spec.outputs)
['Output', 'metrics', 'report', 'report_html']
>>> sorted(decide.component_spec.outputs)
['action', 'cohort', 'decision_md', 'end', 'idempotency_key', 'strategy', 'window']
"""

from typing import NamedTuple

from kfp.dsl import (
    HTML,
    Artifact,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Output,
    PipelineTaskFinalStatus,
)

from components.kfp import IMAGE, component

__all__ = ["IMAGE", "decide", "run_monitor", "settle_decision"]


@component
def run_monitor(policy: str, reference: Input[Dataset], current: Input[Dataset], model_version: str, workdir: str,
                report: Output[Artifact], report_html: Output[HTML], metrics: Output[Metrics]) -> str:
    """Run every monitor of the policy (scoring with the registered model if needed); write the report, its HTML and one metric per monitor."""
    from components.kfp import runtime
    from components.metrics_push import push_monitor
    from components.monitor.html import render_html
    from components.scoring import monitor_metrics, monitor_report

    settings = runtime.settings_for(workdir)
    rep = monitor_report(runtime.resolve_policy(policy), runtime.read_frame(reference.path), runtime.read_frame(current.path), model_version or None, settings)
    push_monitor(settings, rep.model, rep.monitors)  # the alert rules' driftloop_monitor_fired
    runtime.write_text(report.path, rep.to_json())
    runtime.write_text(report_html.path, render_html(rep))
    for name, value in monitor_metrics(rep).items():
        metrics.log_metric(name, value)
    return ",".join(rep.fired_monitors())


@component
def decide(policy: str, report: Input[Artifact], window_end: str, workdir: str, emergency: bool, decision_md: Output[Markdown]) -> NamedTuple(  # type: ignore[valid-type]
        "DecisionOutputs", [("action", str), ("strategy", str), ("window", str), ("cohort", str), ("end", str), ("idempotency_key", str)]):
    """Decide from the report (or retrain now if ``emergency``); a retrain claimed or done for this window becomes "none".

    The ledger is ``DRIFTLOOP_LEDGER_URL`` (PostgreSQL, shared by every run) or SQLite in
    the work directory; the register step marks the claim done. A fresh decision is pushed
    to the Pushgateway and sent to the webhook (when the policy's alerting asks for it).
    """
    from collections import namedtuple

    from components.decision import decide_once, decision_markdown, open_ledger
    from components.kfp import runtime
    from components.metrics_push import push_decision
    from components.monitor.results import MonitorReport
    from components.notify import notify

    settings, pol = runtime.settings_for(workdir), runtime.resolve_policy(policy)
    d, fresh = decide_once(pol, MonitorReport.from_json(runtime.read_text(report.path)), open_ledger(settings), emergency,
                           upstream_workdir=settings.workdir)
    runtime.write_text(decision_md.path, decision_markdown(d, fresh))
    action = d.action if fresh else "none"
    push_decision(settings, pol.model, action)
    if fresh:
        print(f"webhook: {notify(pol, d, settings=settings)['status']}")
    DecisionOutputs = namedtuple("DecisionOutputs", ["action", "strategy", "window", "cohort", "end", "idempotency_key"])  # noqa: N806
    # Retrain on data up to the monitored window's end (labels known by then); an
    # emergency on the newest data: an empty end means "latest" downstream.
    end = "" if emergency else window_end
    return DecisionOutputs(action, d.strategy or "", d.window or "", d.cohort or "", end, d.idempotency_key)


@component
def settle_decision(decision_key: str, workdir: str, status: PipelineTaskFinalStatus) -> str:
    """The retrain branch's exit handler: when it failed, release the decision's claim so the next run retrains.

    A registered model already made the claim done, which a release leaves alone.
    Returns the ledger state afterwards.
    """
    from components.decision import open_ledger
    from components.kfp import runtime

    ledger = open_ledger(runtime.settings_for(workdir))
    if status.state != "SUCCEEDED" and ledger.release(decision_key):
        print(f"retrain branch {status.state.lower()}: released claim {decision_key}; the next run of the window retrains")
    return ledger.state(decision_key) or ""

"""KFP component for the canary rollout: step traffic to the challenger, analyse, promote or roll back.

One component, because deploy, analysis and promote/rollback are one control loop that
must keep its state between steps; it calls :func:`serving.canary.rollout.roll_out`
through :func:`components.kfp.canary.canary_rollout` (the CLI and the demo call it too).

>>> sorted(canary_rollout.component_spec.outputs)
['Output', 'metrics', 'result', 'summary']
"""

from kfp.dsl import Artifact, Markdown, Metrics, Output

from components.kfp import IMAGE, component

__all__ = ["IMAGE", "canary_rollout"]


@component
def canary_rollout(policy: str, backend: str, namespace: str, isvc: str, replay: str, interval_seconds: float, workdir: str, log_dir: str, labels: str,
                   result: Output[Artifact], summary: Output[Markdown], metrics: Output[Metrics]) -> str:
    """Roll the registered challenger out by the policy's canary steps; returns "promoted" or "rolled_back".

    ``log_dir`` is the prediction log (the mounted ``driftloop-prediction-log`` volume on a
    cluster); ``labels`` "store" joins the label store's labels to it for the labelled checks.
    """
    import json

    from components.kfp import canary, runtime

    done = canary.canary_rollout(runtime.resolve_policy(policy), runtime.settings_for(workdir), backend, namespace, isvc, replay, interval_seconds,
                                 on_step=print, log_dir=log_dir, labels=labels)
    runtime.write_text(result.path, json.dumps(done.to_dict(), default=str))
    runtime.write_text(summary.path, done.to_markdown())
    metrics.log_metric("steps", float(len(done.steps)))
    metrics.log_metric("analysed_steps", float(len(done.analysed_steps)))
    metrics.log_metric("promoted", 1.0 if done.outcome == "promoted" else 0.0)
    return done.outcome

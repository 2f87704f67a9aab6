"""KFP steps for retraining, one per phase of :mod:`components.training.workflow`: training set, train, gate, register.

>>> sorted(build_training_data.component_spec.outputs)
['Output', 'holdout', 'train_data']
>>> sorted(train.component_spec.outputs)
['metrics', 'model']
>>> sorted(evaluate.component_spec.outputs)
['Output', 'metrics', 'roc', 'verdict', 'verdict_md']
>>> sorted(register.component_spec.outputs)
['Output', 'metrics']
"""

from kfp.dsl import (
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
)

from components.kfp import IMAGE, component

__all__ = ["IMAGE", "build_training_data", "evaluate", "register", "train"]


@component
def build_training_data(policy: str, strategy: str, end: str, window: str, cohort: str, source: str, workdir: str,
                        train_data: Output[Dataset], holdout: Output[Dataset]) -> str:
    """Rows for the decided strategy/training window/cohort, split by time into train and a later holdout; returns "start/end"."""
    from components.kfp import runtime
    from components.training.datasets import specialist_cohort
    from components.training.files import write_training_rows
    from components.training.workflow import training_set

    data = training_set(runtime.resolve_policy(policy), strategy, end, window=window, cohort=cohort, source=source, settings=runtime.settings_for(workdir))
    write_training_rows(data.train, data.weights, train_data.path)
    runtime.write_frame(data.holdout, holdout.path)
    train_data.metadata.update({"rows": len(data.train), "window": data.window, "strategy": strategy, "cohort": cohort})
    holdout.metadata.update({"rows": len(data.holdout), "cohort": specialist_cohort(data) or ""})  # a specialist is gated on its cohort
    return data.window


@component
def train(policy: str, train_data: Input[Dataset], model: Output[Model], metrics: Output[Metrics]):
    """Fit the policy's trainer (seeded) on the training rows; the fitted model is the artifact."""
    from components.kfp import runtime
    from components.training.files import read_training_rows, save_model
    from components.training.trainers import train_model

    fitted = train_model(runtime.resolve_policy(policy), *read_training_rows(train_data.path))
    save_model(fitted, model.path)
    model.metadata.update({"kind": fitted.kind, "rows": fitted.rows, "seed": fitted.seed, "framework": fitted.kind})
    metrics.log_metric("rows", float(fitted.rows))
    metrics.log_metric("fit_seconds", round(fitted.fit_seconds, 3))


@component
def evaluate(policy: str, model: Input[Model], holdout: Input[Dataset], workdir: str,
             metrics: Output[Metrics], roc: Output[ClassificationMetrics], verdict: Output[Artifact], verdict_md: Output[Markdown]) -> bool:
    """Score challenger and champion on the same holdout; apply the policy's gate."""
    import json

    from components.kfp import runtime
    from components.registry import ModelRegistry
    from components.training.diagnostics import confusion_matrix, roc_points
    from components.training.files import load_model
    from components.training.verdict_report import verdict_markdown
    from components.training.workflow import gate

    pol = runtime.resolve_policy(policy)
    rows = runtime.read_frame(holdout.path)
    challenger = load_model(model.path)
    result = gate(pol, challenger, rows, ModelRegistry(runtime.settings_for(workdir)), cohort=holdout.metadata.get("cohort") or None)
    for arm, values in (("challenger", result.challenger), ("champion", result.champion or {})):
        for name, value in values.get("overall", {}).items():
            if isinstance(value, (int, float)) and value == value:  # NaN is not a metric
                metrics.log_metric(f"{arm}.{name}", float(value))
    y, p = rows[pol.label].astype(int).to_numpy(), challenger.predict(rows)
    roc.log_roc_curve(*roc_points(y, p))
    roc.log_confusion_matrix([f"{pol.label}=0", f"{pol.label}=1"], confusion_matrix(y, p))
    runtime.write_text(verdict.path, json.dumps(result.to_dict()))
    runtime.write_text(verdict_md.path, verdict_markdown(result))
    verdict.metadata.update({"passed": bool(result.passed), "metric": result.metric})
    return bool(result.passed)


@component
def register(policy: str, model: Input[Model], train_data: Input[Dataset], holdout: Input[Dataset], verdict: Input[Artifact],
             time_range: str, strategy: str, cohort: str, decision_key: str, workdir: str, metrics: Output[Metrics]) -> str:
    """Register the model with its verdict and lineage; apply the alias rule. Returns the alias it holds ("" for none).

    ``time_range`` is the training rows' "start/end" (the training-set step's output).
    """
    import json

    from components.kfp import runtime
    from components.registry import ModelRegistry
    from components.training.files import load_model, read_training_data, verdict_from_dict
    from components.training.workflow import register_and_alias

    data = read_training_data(train_data.path, holdout.path, time_range, strategy, cohort)
    info, alias = register_and_alias(runtime.resolve_policy(policy), load_model(model.path), data, verdict_from_dict(json.loads(runtime.read_text(verdict.path))),
                                     ModelRegistry(runtime.settings_for(workdir)), decision_id=decision_key or None, actor="kfp")
    metrics.log_metric("version", float(info.version))
    if decision_key:  # the retrain happened: its claim is final (a failed run leaves it claimable)
        from components.decision import open_ledger

        open_ledger(runtime.settings_for(workdir)).mark_done(decision_key)
    print(f"registered {info.model} version {info.version}, alias {alias or 'none'}")
    return alias or ""

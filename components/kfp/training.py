"""KFP components for retraining: training set, train, champion/challenger evaluation, register.

>>> sorted(build_training_data.component_spec.outputs)
['Output', 'holdout', 'train_data']
>>> sorted(train.component_spec.outputs)
['metrics', 'model']
>>> sorted(evaluate.component_spec.outputs)
['Output', 'metrics', 'roc', 'verdict', 'verdict_md']
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
    """Rows for the decided strategy/window/cohort, split by time into train and a later holdout."""
    from components.kfp import retraining, runtime

    pol = runtime.resolve_policy(policy)
    data = retraining.training_data(pol, strategy, end, window, cohort, source, runtime.settings_for(workdir))
    rows = data.train if data.weights is None else data.train.assign(**{retraining.WEIGHT_COLUMN: data.weights})
    runtime.write_frame(rows, train_data.path)
    runtime.write_frame(data.holdout, holdout.path)
    train_data.metadata.update({"rows": len(data.train), "window": data.window, "strategy": strategy, "cohort": cohort})
    holdout.metadata.update({"rows": len(data.holdout)})
    return data.window


@component
def train(policy: str, train_data: Input[Dataset], model: Output[Model], metrics: Output[Metrics]):
    """Fit the policy's trainer (seeded) on the training rows; the fitted model is the artifact."""
    from components.kfp import retraining, runtime
    from components.training.trainers import train_model

    pol = runtime.resolve_policy(policy)
    rows, weights = retraining.split_weights(runtime.read_frame(train_data.path))
    fitted = train_model(pol, rows, weights)
    retraining.save_model(fitted, model.path)
    model.metadata.update({"kind": fitted.kind, "rows": fitted.rows, "seed": fitted.seed, "framework": fitted.kind})
    metrics.log_metric("rows", float(fitted.rows))
    metrics.log_metric("fit_seconds", round(fitted.fit_seconds, 3))


@component
def evaluate(policy: str, model: Input[Model], holdout: Input[Dataset], workdir: str,
             metrics: Output[Metrics], roc: Output[ClassificationMetrics], verdict: Output[Artifact], verdict_md: Output[Markdown]) -> bool:
    """Score challenger and champion on the same holdout; apply the policy's gate."""
    import json

    from components.kfp import retraining, runtime
    from components.training.evaluate import evaluate as gate

    pol = runtime.resolve_policy(policy)
    rows = runtime.read_frame(holdout.path)
    challenger = retraining.load_model(model.path)
    result = gate(pol, challenger, retraining.champion(pol, runtime.settings_for(workdir)), rows)
    for name, value in result.challenger["overall"].items():
        if isinstance(value, (int, float)) and value == value:  # NaN is not a metric
            metrics.log_metric(f"challenger.{name}", float(value))
    for name, value in (result.champion or {}).get("overall", {}).items():
        if isinstance(value, (int, float)) and value == value:
            metrics.log_metric(f"champion.{name}", float(value))
    y, p = rows[pol.label].astype(int).to_numpy(), challenger.predict(rows)
    roc.log_roc_curve(*retraining.roc_points(y, p))
    roc.log_confusion_matrix([f"{pol.label}=0", f"{pol.label}=1"], retraining.confusion(y, p))
    runtime.write_text(verdict.path, json.dumps(result.to_dict()))
    runtime.write_text(verdict_md.path, retraining.verdict_markdown(result))
    verdict.metadata.update({"passed": bool(result.passed), "metric": result.metric})
    return bool(result.passed)


@component
def register(policy: str, model: Input[Model], train_data: Input[Dataset], holdout: Input[Dataset], verdict: Input[Artifact],
             window: str, strategy: str, cohort: str, decision_key: str, workdir: str) -> str:
    """Register the gated challenger in MLflow with its lineage and point the ``challenger`` alias at it."""
    import json

    from components.kfp import retraining, runtime

    info = retraining.register_challenger(runtime.resolve_policy(policy), retraining.load_model(model.path), runtime.read_frame(train_data.path),
                                       runtime.read_frame(holdout.path), window, strategy, cohort, json.loads(runtime.read_text(verdict.path)),
                                       decision_key, runtime.settings_for(workdir))
    return str(info.version)

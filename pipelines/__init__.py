"""KFP v2 pipelines: train, monitor, rollout, monitor_and_retrain and materialize_and_check; compile, submit, run locally.

Each pipeline module has ``build(target)`` returning the pipeline for ``"cluster"`` (secrets,
limits, retries) or ``"local"`` (plain, for ``kfp.local``). :data:`PIPELINES` names them.

>>> sorted(PIPELINES)
['materialize_and_check', 'monitor', 'monitor_and_retrain', 'rollout', 'train']
"""

import components  # noqa: F401  (the library's process-wide guards: single-threaded pyarrow)

PIPELINES: dict[str, str] = {
    "train": "pipelines.train",
    "monitor": "pipelines.monitor",
    "rollout": "pipelines.rollout",
    "monitor_and_retrain": "pipelines.monitor_and_retrain",
    "materialize_and_check": "pipelines.materialize_and_check",
}

"""KFP v2 pipelines: train, monitor, rollout and monitor_and_retrain; compile, submit, run locally.

Each pipeline module has ``build(target)`` returning the pipeline for ``"cluster"`` (secrets,
limits, retries) or ``"local"`` (plain, for ``kfp.local``). :data:`PIPELINES` names them.

>>> sorted(PIPELINES)
['monitor', 'monitor_and_retrain', 'rollout', 'train']
"""

import components  # noqa: F401  (the library's process-wide guards: single-threaded pyarrow)

PIPELINES: dict[str, str] = {
    "train": "pipelines.train",
    "monitor": "pipelines.monitor",
    "rollout": "pipelines.rollout",
    "monitor_and_retrain": "pipelines.monitor_and_retrain",
}

"""The train pipeline under kfp.local applies the one retrain-and-register rule: no bootstrap step needed.

On an empty registry the first passing model becomes the champion; a later run of the
loop registers its model as a challenger and only then reaches the canary branch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.data.scenarios import generate
from components.policy import policy_text
from components.registry import CHALLENGER, CHAMPION, ModelRegistry
from components.settings import Settings
from pipelines.local import run_pipeline

pytestmark = pytest.mark.e2e


def test_train_pipeline_on_an_empty_registry_leaves_a_champion_then_the_loop_adds_a_challenger(tmp_path: Path) -> None:
    source = tmp_path / "churn.parquet"
    generate("churn", rows=6000, seed=0).to_parquet(source, index=False)
    work = tmp_path / "work"
    registry = ModelRegistry(Settings(workdir=work))

    run = run_pipeline("train", policy_text("churn"), work, source=str(source), params={"strategy": "full", "end": "2025-01-01"})
    assert run.outputs == {"Output": True}
    champion = registry.get("churn", CHAMPION)
    assert champion is not None and champion.version == 1 and champion.tags["driftloop.gate_passed"] == "true"
    assert registry.get("churn", CHALLENGER) is None
    assert [e["event"] for e in registry.history("churn")] == ["promote"]

    loop = run_pipeline("monitor_and_retrain", policy_text("churn"), work, source=str(source),
                        params={"current_start": "2025-09-01", "current_end": "2025-10-01", "reference_start": "2024-01-01",
                                "reference_end": "2025-01-01", "canary": "none"})
    assert loop.outputs["Output"] == "retrain"
    challenger = registry.get("churn", CHALLENGER)  # the post-onset model beats the stale champion (seeded data)
    assert challenger is not None and challenger.version == 2 and challenger.tags["driftloop.gate_passed"] == "true"
    assert registry.get("churn", CHAMPION).version == 1  # only the canary promotes
    assert "canary-rollout" not in loop.task_dirs()

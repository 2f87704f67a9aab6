"""run_rollout refuses bad rollouts before any traffic moves, and its loop (driven by a fake
clock and an in-memory metric source) holds on no data and gives up with a reason."""

from __future__ import annotations

import pytest
from serving_fixtures import MODEL, FakeSource, SpyBackend, policy_dict

from components.errors import ConfigError, ServiceUnavailable
from serving.canary.controller import run_rollout

pytestmark = pytest.mark.integration  # real MLflow registry (SQLite), no servers


def run(store, registry, policy, source=None, **kw):
    backend = SpyBackend()
    source = source or FakeSource()
    result = run_rollout(policy, backend, source, registry, sleep=kw.pop("sleep", lambda s: None), clock=kw.pop("clock", lambda: 0.0), **kw)
    return result, backend


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"steps": [10, 5, 100]}, "rollout.steps: steps must strictly increase"),
        ({"steps": [10, 50]}, "the last step must be 100"),
        ({"checks": [{"metric": "f1_score", "max": 0.1}]}, "rollout.checks.0.metric"),
        ({"checks": []}, "rollout.checks is empty"),
        ({"checks": [{"metric": "error_rate"}]}, "rollout.checks[0] (error_rate) has no threshold"),
        ({"checks": [{"metric": "accuracy", "max_drop": 0.02}]}, "needs delayed labels"),
    ],
)
def test_bad_policies_fail_before_traffic_moves(store, registry, overrides: dict, needle: str) -> None:
    backend = SpyBackend()
    with pytest.raises(ConfigError) as err:
        run_rollout(policy_dict(**overrides), backend, FakeSource(), registry, challenger_uri=f"models:/{MODEL}/{store.versions['good2']}")
    assert needle in str(err.value)
    assert backend.calls == []


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        (f"models:/{MODEL}/99", "does not resolve"),
        (f"models:/{MODEL}@nonexistent", "does not resolve"),
        ("s3://bucket/model", "is not a registry URI"),
        ("models:/other@challenger", "names model 'other'"),
        (f"models:/{MODEL}@champion", "is the champion"),
    ],
)
def test_unreachable_or_wrong_challenger_fails_before_traffic_moves(store, registry, uri: str, needle: str) -> None:
    backend = SpyBackend()
    with pytest.raises(ConfigError) as err:
        run_rollout(policy_dict(checks=[{"metric": "error_rate", "max": 0.01}]), backend, FakeSource(), registry, challenger_uri=uri)
    assert needle in str(err.value)
    assert backend.calls == []


def test_offline_metrics_source_rolls_nothing_out(store, registry) -> None:
    backend = SpyBackend()
    now = [0.0]
    with pytest.raises(ServiceUnavailable, match="metrics source"):
        run_rollout(policy_dict(checks=[{"metric": "error_rate", "max": 0.01}]), backend, FakeSource(online=False), registry,
                    challenger_uri=f"models:/{MODEL}/{store.versions['good2']}", sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert not [c for c in backend.calls if c[0] == "traffic"]


def test_no_data_holds_then_rolls_back_with_reason(store, registry) -> None:
    policy = policy_dict(checks=[{"metric": "error_rate", "max": 0.01}])
    result, backend = run(store, registry, policy, challenger_uri=f"models:/{MODEL}/{store.versions['good2']}", max_no_data_holds=2)
    assert result.outcome == "rolled_back"
    assert [s["decision"] for s in result.steps] == ["hold", "hold", "hold"]
    assert result.reason.startswith("no data for 3 intervals at 50%: no data: challenger served 0 < min_requests 20")
    assert backend.calls[-1] == ("rollback",) and ("traffic", 50) in backend.calls
    assert str(registry.get(MODEL, "champion").version) == store.versions["good1"]


def test_fake_clock_walks_every_step_and_promotes(store, registry) -> None:
    source = FakeSource()
    good1, good2 = store.versions["good1"], store.versions["good2"]
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        source.add(good1, 60)
        source.add(good2, 60)

    policy = policy_dict(steps=[10, 50, 100], checks=[{"metric": "error_rate", "max": 0.01}, {"metric": "latency_p95", "max_ratio": 1.5},
                                                    {"metric": "prediction_shift", "max": 0.25}])
    result, backend = run(store, registry, policy, source, challenger_uri=f"models:/{MODEL}/{good2}", sleep=sleep, clock=lambda: now[0])
    assert result.outcome == "promoted", result.steps
    assert [c for c in backend.calls if c[0] == "traffic"] == [("traffic", 10), ("traffic", 50), ("traffic", 100)]
    assert backend.calls[-1] == ("promote",)
    # prediction_shift needs 100 predictions per arm, so the first interval holds
    assert [s["decision"] for s in result.steps] == ["hold", "advance", "advance", "promote"]
    assert str(registry.get(MODEL, "champion").version) == good2


class RecordKeepingBackend(SpyBackend):
    """A SpyBackend that keeps the rollout record as the InferenceService annotation does, seeded with a dead controller's."""

    def __init__(self, record) -> None:
        from serving.canary.state import MemoryState

        super().__init__()
        self.state = MemoryState()
        self.state.write_state(record, self.state.read_state()[1])

    def read_state(self):
        return self.state.read_state()

    def write_state(self, record, token):
        return self.state.write_state(record, token)


def dead_controllers_record(store, phase: str):
    from serving.canary.state import RolloutRecord

    return RolloutRecord(MODEL, store.versions["good1"], store.versions["good2"], "dead-controller", phase=phase, step=3, percent=100,
                         started_at=0.0, updated_at=0.0, reason="every check passed at 50%")


@pytest.mark.parametrize("same_challenger", [True, False], ids=["same-challenger", "another-challenger"])
def test_a_stale_promotion_is_finished_never_rolled_back(store, registry, same_challenger: bool) -> None:
    backend = RecordKeepingBackend(dead_controllers_record(store, "promoting"))
    challenger = store.versions["good2" if same_challenger else "bad"]
    policy = policy_dict(checks=[{"metric": "error_rate", "max": 0.01}])
    kw = {"sleep": lambda s: None, "clock": lambda: 100_000.0}  # the record is far past stale_after
    if same_challenger:
        result = run_rollout(policy, backend, FakeSource(), registry, challenger_uri=f"models:/{MODEL}/{challenger}", **kw)
        assert (result.outcome, result.challenger_version) == ("promoted", store.versions["good2"])
    else:
        with pytest.raises(ConfigError) as err:
            run_rollout(policy, backend, FakeSource(), registry, challenger_uri=f"models:/{MODEL}/{challenger}", **kw)
        assert f"promote version {store.versions['good2']}; it is now the champion" in str(err.value)
        assert f"run the rollout of version {challenger} again" in str(err.value)
    assert ("promote",) in backend.calls and ("rollback",) not in backend.calls
    assert str(registry.get(MODEL, "champion").version) == store.versions["good2"]  # registry and serving agree
    assert backend.read_state()[0].phase == "promoted"


def test_a_stale_rollout_still_analysing_is_rolled_back(store, registry) -> None:
    backend = RecordKeepingBackend(dead_controllers_record(store, "progressing"))
    result = run_rollout(policy_dict(checks=[{"metric": "error_rate", "max": 0.01}]), backend, FakeSource(), registry,
                         challenger_uri=f"models:/{MODEL}/{store.versions['good2']}", sleep=lambda s: None, clock=lambda: 100_000.0)
    assert result.outcome == "rolled_back" and ("rollback",) in backend.calls
    assert str(registry.get(MODEL, "champion").version) == store.versions["good1"]

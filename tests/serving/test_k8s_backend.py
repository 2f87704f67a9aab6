"""The Kubernetes backend through the real kubernetes client over HTTP against a local
Kubernetes API stand-in that validates every patch against the InferenceService CRD."""

from __future__ import annotations

import pytest
from k8s_standin import KServeStandIn, isvc
from serving_fixtures import MODEL, FakeSource, free_port, policy_dict

from components.errors import ConfigError
from serving.canary.controller import run_rollout
from serving.canary.k8s import KubernetesBackend

pytestmark = pytest.mark.integration


@pytest.fixture
def api():
    """(stand-in, kubernetes ApiClient pointing at it)."""
    from kubernetes import client

    standin = KServeStandIn([isvc(MODEL, "models", "s3://models/churn/1")], not_ready_polls=2)
    port = free_port()
    server, thread = standin.serve(port)
    config = client.Configuration()
    config.host = f"http://127.0.0.1:{port}"
    try:
        yield standin, client.ApiClient(config)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def backend(api_client, name: str = MODEL) -> KubernetesBackend:
    return KubernetesBackend(name, "models", api_client=api_client, storage_uri_for=lambda uri: "s3://models/churn/" + uri.rsplit("/", 1)[1], poll_seconds=0.01)


def test_canary_steps_patch_the_inference_service(api) -> None:
    standin, api_client = api
    b = backend(api_client)
    b.deploy_challenger("models:/churn/2")
    b.wait_ready(timeout=5)  # the stand-in reports NotReady for two polls first
    assert b.current_traffic() == 0
    b.set_traffic(25)
    assert b.current_traffic() == 25
    pred = b.get()["status"]["components"]["predictor"]
    assert [(t["revisionName"], t["percent"]) for t in pred["traffic"]] == [("churn-predictor-00002", 25), ("churn-predictor-00001", 75)]
    b.promote()
    obj = b.get()
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert obj["spec"]["predictor"]["model"]["storageUri"] == "s3://models/churn/2"
    assert obj["status"]["components"]["predictor"]["traffic"][0]["percent"] == 100
    assert {ct for ct, _ in standin.patches} == {"application/merge-patch+json"}
    assert standin.patches[0][1] == {"spec": {"predictor": {"canaryTrafficPercent": 0, "model": {"storageUri": "s3://models/churn/2"}}}}


def test_rollback_returns_all_traffic_to_the_previous_revision(api) -> None:
    _, api_client = api
    b = backend(api_client)
    b.deploy_challenger("models:/churn/2")
    b.set_traffic(50)
    b.rollback()
    pred = b.get()["status"]["components"]["predictor"]
    assert {t["revisionName"]: t["percent"] for t in pred["traffic"]} == {"churn-predictor-00002": 0, "churn-predictor-00001": 100}
    assert b.current_traffic() == 0


def test_api_errors_are_clear(api) -> None:
    _, api_client = api
    with pytest.raises(ConfigError, match="InferenceService models/nope not found"):
        backend(api_client, "nope").set_traffic(10)
    b = backend(api_client)
    with pytest.raises(ConfigError, match="canaryTrafficPercent 150"):
        b.set_traffic(150)
    # a patch the CRD schema rejects comes back as 422 and a ConfigError naming the field
    with pytest.raises(ConfigError, match="canaryTrafficPercent"):
        b._patch({"spec": {"predictor": {"canaryTrafficPercent": "ten"}}})


def test_controller_rolls_back_on_kubernetes(api, store, registry) -> None:
    standin, api_client = api
    source, good1, good2 = FakeSource(), store.versions["good1"], store.versions["good2"]

    def sleep(seconds: float) -> None:
        source.add(good1, 100)
        source.add(good2, 100, errors=20)

    result = run_rollout(policy_dict(checks=[{"metric": "error_rate", "max": 0.01}]), backend(api_client), source, registry,
                         challenger_uri=f"models:/{MODEL}/{good2}", sleep=sleep)
    assert result.outcome == "rolled_back" and result.reason == "error_rate 0.2 > 0.01 (challenger, n=100)"
    percents = [body["spec"]["predictor"].get("canaryTrafficPercent", "removed") for _, body in standin.patches if "spec" in body]
    assert percents == [0, 50, 0]
    # the rollout record in the annotation, written before each traffic move, ends rolled back
    from serving.canary.state import ANNOTATION, RolloutRecord

    kinds = ["state" if "metadata" in body else body["spec"]["predictor"].get("canaryTrafficPercent") for _, body in standin.patches]
    assert kinds.index(50) > kinds.index("state", kinds.index(0) + 1)  # a state write between deploy (0) and the 50% move
    record = RolloutRecord.from_json(standin.objects[("models", MODEL)]["metadata"]["annotations"][ANNOTATION])
    assert (record.phase, record.percent, record.challenger, len(record.steps)) == ("rolled_back", 0, good2, 1)

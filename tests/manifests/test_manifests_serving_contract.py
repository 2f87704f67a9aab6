"""Contracts between the manifests' InferenceServices and the serving code that runs or
drives them.

- The canary controller's Kubernetes backend (serving/canary/k8s.py): its patches are
  applied here as JSON merge patches (what the API server does with them) to the built
  InferenceService; the result must stay valid against the CRD and make the predictor
  serve the challenger.
- The containers' command lines: the predictor's args must parse with serving.predictor's
  parser, and the transformer's args, after KServe appends its own, with
  serving.transformer's; the log sink's with serving.log_sink's.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from manifest_checks import MANIFESTS, build, isvc_errors, pod_specs

pytestmark = pytest.mark.unit


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (null deletes, objects merge, everything else replaces)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class FakeCustomObjects:
    """Holds one object; get/patch like kubernetes.client.CustomObjectsApi (merge patch)."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.patches: list[dict[str, Any]] = []

    def get_namespaced_custom_object(self, *_: Any) -> dict[str, Any]:
        return copy.deepcopy(self.obj)

    def patch_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.patches.append(args[-1])
        self.obj = merge_patch(self.obj, args[-1])
        return copy.deepcopy(self.obj)


@pytest.fixture
def churn() -> dict[str, Any]:
    return next(o for o in build(MANIFESTS / "overlays" / "prod") if o["kind"] == "InferenceService" and o["metadata"]["name"] == "churn")


def _backend(obj: dict[str, Any]) -> tuple[Any, FakeCustomObjects]:
    from kubernetes import client

    from serving.canary.k8s import KubernetesBackend

    backend = KubernetesBackend("churn", "driftloop", api_client=client.ApiClient(client.Configuration()), storage_uri_for=lambda uri: uri)
    fake = FakeCustomObjects(obj)
    backend.api = fake
    return backend, fake


def _served_model_uri(obj: dict[str, Any]) -> str:
    args = obj["spec"]["predictor"]["containers"][0]["args"]
    return str(args[args.index("--model-uri") + 1])


def test_merge_patch_semantics() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == {"a": {"c": 2, "d": 3}, "l": [2]}


def test_traffic_steps_promote_and_rollback_keep_the_service_valid(churn: dict[str, Any]) -> None:
    backend, fake = _backend(churn)
    for percent in (10, 50):
        backend.set_traffic(percent)
        assert fake.obj["spec"]["predictor"]["canaryTrafficPercent"] == percent
        assert isvc_errors(fake.obj) == []
    backend.promote()
    assert "canaryTrafficPercent" not in fake.obj["spec"]["predictor"] and isvc_errors(fake.obj) == []
    backend.rollback()
    assert fake.obj["spec"]["predictor"]["canaryTrafficPercent"] == 0 and isvc_errors(fake.obj) == []
    # everything the backend writes is a field Argo CD has been told to leave alone
    touched = {key for p in fake.patches for key in p["spec"]["predictor"]}
    assert touched <= {"canaryTrafficPercent", "containers"}


def test_deploying_a_challenger_makes_the_predictor_load_it(churn: dict[str, Any]) -> None:
    backend, fake = _backend(churn)
    backend.deploy_challenger("models:/churn/7")
    predictor = fake.obj["spec"]["predictor"]
    assert isvc_errors(fake.obj) == []
    assert "model" not in predictor, "a predictor is either a model spec or custom containers, not both"
    assert _served_model_uri(fake.obj) == "models:/churn/7"
    assert predictor["canaryTrafficPercent"] == 0


def kserve_transformer_args(args: list[str], name: str, namespace: str) -> list[str]:
    """The args KServe's controller gives a custom transformer container: it appends
    ``--model_name``, ``--predictor_host`` and ``--http_port`` unless already present
    (pkg/apis/serving/v1beta1/transformer_custom.go, GetContainer)."""
    out = list(args)
    for flag, value in (("--model_name", name), ("--predictor_host", f"{name}-predictor.{namespace}"), ("--http_port", "8080")):
        if flag not in out:
            out += [flag, value]
    return out


def test_predictor_args_parse(churn: dict[str, Any]) -> None:
    from serving.predictor import build_parser

    container = churn["spec"]["predictor"]["containers"][0]
    assert container["command"] == ["python", "-m", "serving.predictor"]
    args = build_parser().parse_args(container["args"])
    assert (args.model_name, args.model_uri, args.http_port, args.policy) == ("churn", "models:/churn@champion", 8080, "churn")


class _Parsed(Exception):
    pass


def test_transformer_accepts_the_args_kserve_gives_it(churn: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.transformer as transformer

    def capture(name: str, policy: Any, settings: Any = None) -> None:
        raise _Parsed(name, policy.model)

    monkeypatch.setattr(transformer, "FeastTransformer", capture)
    container = churn["spec"]["transformer"]["containers"][0]
    assert container["command"] == ["python", "-m", "serving.transformer"]
    argv = kserve_transformer_args(container["args"], "churn", "driftloop")
    with pytest.raises(_Parsed) as parsed:
        transformer.main(argv)
    assert parsed.value.args == ("churn", "churn")


def _modules_run() -> list[str]:
    """Every ``python -m <module>`` a container in the manifests runs."""
    objs = [*build(MANIFESTS / "overlays" / "dev"), *build(MANIFESTS / "overlays" / "prod")]
    found = set()
    for obj in objs:
        for _, pod in pod_specs(obj):
            for c in pod.get("containers", []):
                cmd = c.get("command", [])
                if cmd[:2] == ["python", "-m"]:
                    found.add(cmd[2])
    return sorted(found)


@pytest.mark.parametrize("module", _modules_run())
def test_every_module_the_manifests_run_exists(module: str) -> None:
    import importlib.util

    assert importlib.util.find_spec(module) is not None, f"python -m {module}: no such module"


def test_log_sink_args_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.log_sink as log_sink

    def capture(log_dir: str, model_name: str) -> None:
        raise _Parsed(log_dir)

    monkeypatch.setattr(log_sink, "create_app", capture)
    deployment = next(o for o in build(MANIFESTS / "overlays" / "prod") if o["kind"] == "Deployment" and o["metadata"]["name"] == "driftloop-log-sink")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "serving.log_sink"]
    with pytest.raises(_Parsed) as parsed:
        log_sink.main(container["args"])
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert parsed.value.args[0] in mounts, "the sink must write onto the prediction-log volume"

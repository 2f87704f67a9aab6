"""NetworkPolicies: default deny, and exactly the flows driftloop needs are open.

``allowed`` evaluates Kubernetes NetworkPolicy semantics (a connection needs an egress
allowance on the source and an ingress allowance on the destination, unless no policy of
that type selects the pod) for the pod labels each workload carries.
"""

from __future__ import annotations

from typing import Any

import pytest
from manifest_checks import MANIFESTS, build

pytestmark = pytest.mark.unit

NS = "driftloop"
PIPELINE_STEP = {"pipelines.kubeflow.org/v2_component": "true"}
ISVC = {"serving.kserve.io/inferenceservice": "churn", "component": "predictor"}
MLFLOW = {"app.kubernetes.io/name": "mlflow"}
FEAST = {"app.kubernetes.io/name": "feast"}
SINK = {"app.kubernetes.io/name": "driftloop-log-sink"}
SYNC = {"app.kubernetes.io/name": "driftloop-pipeline-sync"}
OTHER = {"app": "something-else"}
EXTERNAL = None  # an address outside the cluster (PostgreSQL, Redis, the API server)

Pod = tuple[dict[str, str] | None, str | None]  # (labels, namespace); None labels = an IP block


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"Exists": key in labels, "DoesNotExist": key not in labels,
              "In": labels.get(key) in values, "NotIn": labels.get(key) not in values}[op]
        if not ok:
            return False
    return True


def _peer_matches(peer: dict[str, Any], pod: Pod, policy_ns: str) -> bool:
    labels, namespace = pod
    if "ipBlock" in peer:
        return labels is None
    if labels is None:
        return False
    ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
    if ns_sel is None and namespace != policy_ns:
        return False
    if ns_sel is not None and not _matches(ns_sel, {"kubernetes.io/metadata.name": namespace or ""}):
        return False
    return pod_sel is None or _matches(pod_sel, labels)


def _direction_allows(policies: list[dict[str, Any]], pod: Pod, peer: Pod, port: int, direction: str) -> bool:
    labels, namespace = pod
    if labels is None or namespace != NS:
        return True  # outside driftloop's namespace: not ours to restrict
    kind = "Ingress" if direction == "ingress" else "Egress"
    selecting = [p for p in policies if kind in p["spec"]["policyTypes"] and _matches(p["spec"]["podSelector"], labels)]
    if not selecting:
        return True
    field, peers_key = direction, "from" if direction == "ingress" else "to"
    for p in selecting:
        for rule in p["spec"].get(field, []):
            peers_ok = peers_key not in rule or any(_peer_matches(x, peer, NS) for x in rule.get(peers_key, []))
            ports_ok = "ports" not in rule or any(pp.get("port") == port for pp in rule["ports"])
            if peers_ok and ports_ok:
                return True
    return False


def allowed(policies: list[dict[str, Any]], src: Pod, dst: Pod, port: int) -> bool:
    return _direction_allows(policies, src, dst, port, "egress") and _direction_allows(policies, dst, src, port, "ingress")


@pytest.fixture(scope="module")
def policies() -> list[dict[str, Any]]:
    return [o for o in build(MANIFESTS / "overlays" / "prod") if o["kind"] == "NetworkPolicy"]


def test_default_deny_selects_every_pod(policies: list[dict[str, Any]]) -> None:
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}


@pytest.mark.parametrize(
    ("src", "dst", "port"),
    [
        ((ISVC, NS), (SINK, NS), 8080),  # KServe logger -> prediction-log sink
        ((ISVC, NS), (MLFLOW, NS), 5000),  # predictor loads the model
        ((ISVC, NS), (FEAST, NS), 6566),
        (({"app": "activator"}, "knative-serving"), (ISVC, NS), 8080),  # requests arrive
        (({"app": "prometheus"}, "monitoring"), (ISVC, NS), 8080),  # scraping
        ((PIPELINE_STEP, NS), (MLFLOW, NS), 5000),
        ((PIPELINE_STEP, NS), (FEAST, NS), 6566),
        ((PIPELINE_STEP, NS), (ISVC, NS), 8080),
        ((PIPELINE_STEP, NS), ({"app": "ml-pipeline"}, "kubeflow"), 8888),
        ((PIPELINE_STEP, NS), (EXTERNAL, None), 443),  # Kubernetes API: the canary controller
        ((SYNC, NS), ({"app": "ml-pipeline"}, "kubeflow"), 8888),
        ((MLFLOW, NS), (EXTERNAL, None), 5432),
        ((FEAST, NS), (EXTERNAL, None), 6379),
        ((SINK, NS), ({"k8s-app": "kube-dns"}, "kube-system"), 53),
    ],
)
def test_needed_flows_are_open(policies: list[dict[str, Any]], src: Pod, dst: Pod, port: int) -> None:
    assert allowed(policies, src, dst, port)


@pytest.mark.parametrize(
    ("src", "dst", "port"),
    [
        ((OTHER, NS), (MLFLOW, NS), 5000),  # an unrelated pod in the namespace
        (({"app": "x"}, "default"), (MLFLOW, NS), 5000),  # another namespace
        (({"app": "x"}, "default"), (SINK, NS), 8080),
        ((PIPELINE_STEP, NS), (SINK, NS), 8080),  # only models write the prediction log
        ((SYNC, NS), (MLFLOW, NS), 5000),  # the sync job talks to KFP only
        ((SYNC, NS), (EXTERNAL, None), 443),
        ((SINK, NS), (EXTERNAL, None), 443),  # the sink calls nothing
        ((MLFLOW, NS), (EXTERNAL, None), 443),
        ((ISVC, NS), ({"app": "ml-pipeline"}, "kubeflow"), 8888),
    ],
)
def test_everything_else_is_closed(policies: list[dict[str, Any]], src: Pod, dst: Pod, port: int) -> None:
    assert not allowed(policies, src, dst, port)

"""NetworkPolicies: default deny, and exactly the flows driftloop needs are open.

``allowed`` evaluates Kubernetes NetworkPolicy semantics (a connection needs an egress
allowance on the source and an ingress allowance on the destination, unless no policy of
that type selects the pod) for the pod labels each workload carries.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from manifest_checks import MANIFESTS, build

pytestmark = pytest.mark.unit

NS = "driftloop"
PIPELINE_STEP = {"pipelines.kubeflow.org/v2_component": "true"}
ISVC = {"serving.kserve.io/inferenceservice": "churn", "component": "predictor"}
TRANSFORMER = {"serving.kserve.io/inferenceservice": "churn", "component": "transformer"}
POSTGRES = {"app.kubernetes.io/name": "postgresql"}
REDIS = {"app.kubernetes.io/name": "redis"}
MLFLOW = {"app.kubernetes.io/name": "mlflow"}
FEAST = {"app.kubernetes.io/name": "feast"}
SINK = {"app.kubernetes.io/name": "driftloop-log-sink"}
SYNC = {"app.kubernetes.io/name": "driftloop-pipeline-sync"}
OTHER = {"app": "something-else"}
API_SERVER = (None, "10.96.0.1")  # the Kubernetes API endpoint the base names by address
EXTERNAL = (None, "203.0.113.7")  # any other address outside the cluster

Pod = tuple[dict[str, str] | None, str | None]  # (labels, namespace); None labels = an address (namespace holds the IP)


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
        if labels is not None:
            return False  # pods are matched by selectors here, not by address
        block = peer["ipBlock"]
        ip = ipaddress.ip_address(namespace or "0.0.0.0")
        return ip in ipaddress.ip_network(block["cidr"]) and not any(ip in ipaddress.ip_network(c) for c in block.get("except", []))
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
        (({"app": "activator"}, "knative-serving"), (ISVC, NS), 8080),  # requests arrive
        (({"app": "prometheus"}, "monitoring"), (ISVC, NS), 8080),  # scraping
        ((PIPELINE_STEP, NS), (MLFLOW, NS), 5000),
        ((PIPELINE_STEP, NS), (FEAST, NS), 6566),
        ((PIPELINE_STEP, NS), (ISVC, NS), 8080),
        ((PIPELINE_STEP, NS), ({"app": "ml-pipeline"}, "kubeflow"), 8888),
        ((PIPELINE_STEP, NS), API_SERVER, 443),  # Kubernetes API: the canary controller
        ((PIPELINE_STEP, NS), (POSTGRES, NS), 5432),  # decision ledger, Feast offline store
        ((PIPELINE_STEP, NS), (REDIS, NS), 6379),
        ((SYNC, NS), ({"app": "ml-pipeline"}, "kubeflow"), 8888),
        ((MLFLOW, NS), (POSTGRES, NS), 5432),
        ((FEAST, NS), (REDIS, NS), 6379),
        ((FEAST, NS), (POSTGRES, NS), 5432),
        ((TRANSFORMER, NS), (FEAST, NS), 6566),
        ((TRANSFORMER, NS), (REDIS, NS), 6379),
        ((TRANSFORMER, NS), (ISVC, NS), 8080),  # transformer -> predictor
        ((TRANSFORMER, NS), (SINK, NS), 8080),
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
        ((SYNC, NS), API_SERVER, 443),
        ((SINK, NS), API_SERVER, 443),  # the sink calls nothing
        ((SINK, NS), (MLFLOW, NS), 5000),
        ((MLFLOW, NS), EXTERNAL, 443),
        ((ISVC, NS), ({"app": "ml-pipeline"}, "kubeflow"), 8888),
        ((TRANSFORMER, NS), (MLFLOW, NS), 5000),  # the pod facing clients cannot reach the registry
        ((ISVC, NS), (REDIS, NS), 6379),  # predictors read no features
        ((ISVC, NS), (FEAST, NS), 6566),
        ((ISVC, NS), (POSTGRES, NS), 5432),
        ((OTHER, NS), (POSTGRES, NS), 5432),
        ((OTHER, NS), (REDIS, NS), 6379),
        ((PIPELINE_STEP, NS), EXTERNAL, 443),  # steps reach the API server, not the internet
        ((PIPELINE_STEP, NS), EXTERNAL, 5432),
        ((ISVC, NS), EXTERNAL, 6379),
        ((FEAST, NS), EXTERNAL, 5432),
        ((MLFLOW, NS), EXTERNAL, 5432),  # its own PostgreSQL pods only
        ((PIPELINE_STEP, NS), (SINK, NS), 8080),
    ],
)
def test_everything_else_is_closed(policies: list[dict[str, Any]], src: Pod, dst: Pod, port: int) -> None:
    assert not allowed(policies, src, dst, port)


def _egress_rules(policies: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(policy, peers, ports) for every egress rule, in a canonical text form."""
    out = set()
    for p in policies:
        for rule in p["spec"].get("egress", []):
            peers = ";".join(sorted(_peer_text(x) for x in rule.get("to", []))) or "ANY"
            ports = ",".join(str(pp["port"]) for pp in rule.get("ports", [])) or "ANY"
            out.add((p["metadata"]["name"], peers, ports))
    return out


def _peer_text(peer: dict[str, Any]) -> str:
    if "ipBlock" in peer:
        return f"ip={peer['ipBlock']['cidr']}"
    parts = []
    for key in ("namespaceSelector", "podSelector"):
        sel = peer.get(key)
        if sel is not None:
            labels = [f"{k}={v}" for k, v in sorted(sel.get("matchLabels", {}).items())]
            labels += [f"{e['key']}:{e['operator']}" for e in sel.get("matchExpressions", [])]
            parts.append(f"{key[:3]}({','.join(labels)})")
    return "+".join(parts)


# Every egress rule driftloop's pods have. A new rule fails this test until it is listed
# here (and in docs/security.md): egress is an allowance, not a default.
EGRESS_ALLOWANCE = {
    ("allow-dns", "nam(kubernetes.io/metadata.name=kube-system)+pod(k8s-app=kube-dns)", "53,53"),
    ("inferenceservices", "pod(serving.kserve.io/inferenceservice:Exists)", "ANY"),
    ("inferenceservices", "pod(app.kubernetes.io/name=driftloop-log-sink)", "8080"),
    ("inferenceservices", "nam(kubernetes.io/metadata.name=istio-system);nam(kubernetes.io/metadata.name=knative-serving)", "ANY"),
    ("predictors", "pod(app.kubernetes.io/name=mlflow)", "5000"),
    ("transformers", "pod(app.kubernetes.io/name=feast)", "6566"),
    ("transformers", "pod(app.kubernetes.io/name=redis)", "6379"),
    ("mlflow", "pod(app.kubernetes.io/name=postgresql)", "5432"),
    ("feast", "pod(app.kubernetes.io/name=redis)", "6379"),
    ("feast", "pod(app.kubernetes.io/name=postgresql)", "5432"),
    ("pipeline-steps", "nam(kubernetes.io/metadata.name=kubeflow)", "8887,8888,8080,9000"),
    ("pipeline-steps", "pod(app.kubernetes.io/name=mlflow)", "5000"),
    ("pipeline-steps", "pod(app.kubernetes.io/name=feast)", "6566"),
    ("pipeline-steps", "pod(serving.kserve.io/inferenceservice:Exists)", "ANY"),
    ("pipeline-steps", "nam(kubernetes.io/metadata.name=istio-system);nam(kubernetes.io/metadata.name=knative-serving);"
                       "nam(kubernetes.io/metadata.name=monitoring)", "ANY"),
    ("pipeline-steps", "pod(app.kubernetes.io/name=postgresql)", "5432"),
    ("pipeline-steps", "pod(app.kubernetes.io/name=redis)", "6379"),
    ("pipeline-steps", "ip=10.96.0.1/32", "443,6443"),
    ("pipeline-sync", "nam(kubernetes.io/metadata.name=kubeflow)", "8888"),
    ("feature-load", "pod(app.kubernetes.io/name=postgresql)", "5432"),
    ("feature-load", "pod(app.kubernetes.io/name=redis)", "6379"),
}


def test_egress_is_exactly_the_allowance(policies: list[dict[str, Any]]) -> None:
    rules = _egress_rules(policies)
    assert rules - EGRESS_ALLOWANCE == set(), "egress rules beyond the allowance"
    assert EGRESS_ALLOWANCE - rules == set(), "allowance entries no policy grants (remove them)"


def test_no_egress_rule_open_to_any_address(policies: list[dict[str, Any]]) -> None:
    for name, peers, ports in _egress_rules(policies):
        assert peers != "ANY", f"{name}: an egress rule with ports {ports} and no peers reaches every address"
        assert "ip=0.0.0.0/0" not in peers, name

"""Cohort routing on a cluster: the KServe InferenceGraph that sends each cohort to its specialist.

One ``Switch`` node named ``root``: KServe's graph router takes the first step whose GJSON
``condition`` matches the request body, so each cohort with a specialist gets a step
``instances.#(<column>=="<cohort>")`` to its InferenceService ``<model>-<cohort>``, and a
last step whose condition any v1 request meets (``instances``) sends the rest to the
global champion's InferenceService ``<model>``. A request is routed as a whole (by the
first matching instance): clients send one cohort per request. Locally,
:mod:`serving.router` does the same per row.

The graph for the registry's current specialists is
``inference_graph(model, column, registry.cohort_routes(model))``; a retired specialist
drops out of ``cohort_routes`` and therefore out of the graph. The committed manifests
(``manifests/cohorts/<model>-<cohort>/``) are this function's output for the recsys
casual specialist (``tests/manifests/test_inferencegraph_cohorts.py`` checks they agree).

>>> graph = inference_graph("recsys", "user_cohort", ["casual"])
>>> [(s["name"], s["serviceName"], s["condition"]) for s in graph["spec"]["nodes"]["root"]["steps"]]
[('casual', 'recsys-casual', 'instances.#(user_cohort=="casual")'), ('global', 'recsys', 'instances')]
>>> [s["serviceName"] for s in inference_graph("recsys", "user_cohort", [])["spec"]["nodes"]["root"]["steps"]]
['recsys']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from components.errors import ConfigError

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def specialist_service(model: str, cohort: str) -> str:
    """The InferenceService of ``cohort``'s specialist: ``<model>-<cohort>`` (a DNS-1035 label).

    >>> specialist_service("recsys", "casual")
    'recsys-casual'
    """
    name = f"{model}-{cohort}"
    if not _NAME.fullmatch(name) or len(name) > 45:
        raise ConfigError(f"cohort {cohort!r} of {model!r} cannot name an InferenceService ({name!r})",
                          fix="use cohort values of lower-case letters, digits and '-' (at most 45 characters with the model name)")
    return name


def inference_graph(model: str, cohort_column: str, cohorts: Iterable[str], replicas: tuple[int, int] = (1, 3)) -> dict[str, Any]:
    """The ``serving.kserve.io/v1alpha1`` InferenceGraph ``<model>-cohorts`` routing ``cohorts`` to their specialists."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", cohort_column):
        raise ConfigError(f"cohort column {cohort_column!r} cannot be used in a GJSON condition", fix="use a plain field name")
    steps = [{"name": str(c), "serviceName": specialist_service(model, str(c)), "condition": f'instances.#({cohort_column}=="{c}")'}
             for c in sorted(set(map(str, cohorts)))]
    steps.append({"name": "global", "serviceName": model, "condition": "instances"})
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": f"{model}-cohorts", "labels": {"app.kubernetes.io/component": "serving", "driftloop.io/model": model},
                     "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
        "spec": {"minReplicas": replicas[0], "maxReplicas": replicas[1], "nodes": {"root": {"routerType": "Switch", "steps": steps}}},
    }

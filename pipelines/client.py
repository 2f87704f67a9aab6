"""Submit and schedule pipelines on Kubeflow Pipelines with the real ``kfp.Client``.

Uploads are versioned: the first submit creates the pipeline, later ones add a version
named after driftloop's version and the compiled YAML's hash, so re-submitting the same
YAML reuses the version. Recurring runs take the policy's cron (5 fields, converted to
the 6-field form the KFP scheduler reads).

>>> kfp_cron("0 6 1 * *")
'0 0 6 1 * *'
>>> kfp_cron("0 0 * * * *")
'0 0 * * * *'
>>> run_parameters("monitor", "model: x\\n", {"source": "s3://b/d.parquet"})
{'policy': 'model: x\\n', 'source': 's3://b/d.parquet'}
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop import __version__
from driftloop.errors import ConfigError, ServiceUnavailable

DEFAULT_EXPERIMENT = "driftloop"


@dataclass(frozen=True)
class Submitted:
    """What a submit or schedule created on the KFP server."""

    pipeline_id: str
    version_id: str
    experiment_id: str
    run_id: str = ""
    recurring_run_id: str = ""
    url: str = ""


def kfp_cron(cron: str) -> str:
    """A 5-field cron (minute first) as the 6-field KFP form (seconds first); 6 fields pass through."""
    fields = cron.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return " ".join(fields)
    raise ConfigError(f"schedule {cron!r} is not a cron expression", fix="use 5 fields like '0 6 1 * *' (monthly) or '0 * * * *' (hourly)")


def run_parameters(pipeline: str, policy_yaml: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's parameters: the policy YAML text plus any window / source overrides."""
    params: dict[str, Any] = {"policy": policy_yaml}
    params.update({k: v for k, v in (extra or {}).items() if v is not None})
    return params


def connect(host: str) -> Any:
    """A ``kfp.Client`` for ``host``; an unreachable server raises ServiceUnavailable."""
    import kfp

    if not host:
        raise ConfigError("no Kubeflow Pipelines host given", fix="pass --host http://<kfp-ui-or-api>/ or set KF_PIPELINES_ENDPOINT")
    try:
        client = kfp.Client(host=host)
        client._healthz_api.healthz_service_get_healthz(_request_timeout=10)
    except Exception as exc:  # urllib3 / ApiException: the server is not there or not KFP
        raise ServiceUnavailable(f"Kubeflow Pipelines at {host} is not reachable: {type(exc).__name__}", fix="check --host and that the KFP API is up (kubectl -n kubeflow port-forward svc/ml-pipeline 8888:8888)") from None
    return client


def package_version(package: Path) -> str:
    """A version name that changes only when the compiled YAML changes."""
    digest = hashlib.sha256(package.read_bytes()).hexdigest()[:10]
    return f"v{__version__}-{digest}"


def upload(client: Any, pipeline: str, package: Path, description: str = "") -> tuple[str, str]:
    """Upload ``package`` as pipeline ``driftloop-<pipeline>`` (a new version if it exists); return ids.

    A version whose name matches the YAML's hash is reused, so re-submitting is idempotent.
    """
    name = f"driftloop-{pipeline.replace('_', '-')}"
    version = package_version(package)
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        # The upload creates the pipeline and its first version from the same YAML.
        pipeline_id = client.upload_pipeline(str(package), pipeline_name=name, description=description or None).pipeline_id
        first = client.list_pipeline_versions(pipeline_id, page_size=1).pipeline_versions or []
        if first:
            return pipeline_id, first[0].pipeline_version_id
    versions = client.list_pipeline_versions(pipeline_id, page_size=100).pipeline_versions or []
    for v in versions:
        if v.display_name == version:
            return pipeline_id, v.pipeline_version_id
    new = client.upload_pipeline_version(str(package), pipeline_version_name=version, pipeline_id=pipeline_id, description=description or None)
    return pipeline_id, new.pipeline_version_id


def compiled_package(pipeline: str, target: str = "cluster") -> Path:
    """Compile ``pipeline`` to a temporary YAML file (submit always sends what the code defines)."""
    from pipelines.compile import compile_pipeline

    return compile_pipeline(pipeline, Path(tempfile.mkdtemp(prefix="driftloop-kfp-")) / f"{pipeline}.yaml", target)


def submit(host: str, pipeline: str, policy_yaml: str, params: dict[str, Any] | None = None, experiment: str = DEFAULT_EXPERIMENT,
           run_name: str = "", service_account: str = "", client: Any = None) -> Submitted:
    """Upload the pipeline version and start one run with the policy and parameters."""
    client = client or connect(host)
    package = compiled_package(pipeline)
    pipeline_id, version_id = upload(client, pipeline, package)
    exp = client.create_experiment(name=experiment)
    run = client.run_pipeline(experiment_id=exp.experiment_id, job_name=run_name or f"{pipeline}", pipeline_id=pipeline_id, version_id=version_id,
                              params=run_parameters(pipeline, policy_yaml, params), service_account=service_account or None)
    return Submitted(pipeline_id, version_id, exp.experiment_id, run_id=run.run_id, url=f"{host.rstrip('/')}/#/runs/details/{run.run_id}")


def schedule(host: str, pipeline: str, policy_yaml: str, cron: str, params: dict[str, Any] | None = None, experiment: str = DEFAULT_EXPERIMENT,
             name: str = "", service_account: str = "", client: Any = None) -> Submitted:
    """Upload the pipeline version and create an enabled recurring run on ``cron`` (no catch-up, one at a time)."""
    cron6 = kfp_cron(cron)
    client = client or connect(host)
    package = compiled_package(pipeline)
    pipeline_id, version_id = upload(client, pipeline, package)
    exp = client.create_experiment(name=experiment)
    job = client.create_recurring_run(experiment_id=exp.experiment_id, job_name=name or pipeline, cron_expression=cron6, max_concurrency=1, no_catchup=True,
                                      params=run_parameters(pipeline, policy_yaml, params), pipeline_id=pipeline_id, version_id=version_id,
                                      service_account=service_account or None)
    return Submitted(pipeline_id, version_id, exp.experiment_id, recurring_run_id=job.recurring_run_id,
                     url=f"{host.rstrip('/')}/#/recurringrun/details/{job.recurring_run_id}")

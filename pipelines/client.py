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

from components import __version__
from components.errors import ConfigError, ServiceUnavailable

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


def display_name(pipeline: str) -> str:
    """The KFP name of a driftloop pipeline (its ``pipelineInfo.name``).

    >>> display_name("monitor_and_retrain")
    'driftloop-monitor-and-retrain'
    """
    return f"driftloop-{pipeline.replace('_', '-')}"


def package_name(package: Path) -> str:
    """``pipelineInfo.name`` of a compiled pipeline YAML."""
    import yaml

    try:
        spec = next(yaml.safe_load_all(package.read_text()))
        return str(spec["pipelineInfo"]["name"])
    except (OSError, StopIteration, KeyError, TypeError, yaml.YAMLError):
        raise ConfigError(f"{package} is not a compiled KFP pipeline", fix="compile it with 'driftloop compile'") from None


def upload(client: Any, name: str, package: Path, version_name: str = "", description: str = "") -> tuple[str, str]:
    """Upload ``package`` as pipeline ``name`` (a new version if the pipeline exists); return ids.

    A version with the same name is reused (the default name is the YAML's hash), so
    re-submitting the same YAML is idempotent.
    """
    version = version_name or package_version(package)
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        # The upload creates the pipeline and its first version from the same YAML.
        pipeline_id = client.upload_pipeline(str(package), pipeline_name=name, description=description or None).pipeline_id
        first = client.list_pipeline_versions(pipeline_id, page_size=1).pipeline_versions or []
        if first and not version_name:
            return pipeline_id, first[0].pipeline_version_id
    found = find_version(client, pipeline_id, version)
    if found:
        return pipeline_id, found
    new = client.upload_pipeline_version(str(package), pipeline_version_name=version, pipeline_id=pipeline_id, description=description or None)
    return pipeline_id, new.pipeline_version_id


def find_version(client: Any, pipeline_id: str, version_name: str) -> str | None:
    """The id of the pipeline's version called ``version_name``, if it exists."""
    versions = client.list_pipeline_versions(pipeline_id, page_size=200).pipeline_versions or []
    return next((v.pipeline_version_id for v in versions if v.display_name == version_name), None)


def compiled_package(pipeline: str, target: str = "cluster") -> Path:
    """Compile ``pipeline`` to a temporary YAML file (submit always sends what the code defines)."""
    from pipelines.compile import compile_pipeline

    return compile_pipeline(pipeline, Path(tempfile.mkdtemp(prefix="driftloop-kfp-")) / f"{pipeline}.yaml", target)


def _pipeline_version(client: Any, pipeline: str, package: Path | None, version_name: str) -> tuple[str, str]:
    """Ids of the version to run: an existing ``version_name``, else an upload of the package."""
    if package is None:
        name = display_name(pipeline)
        if version_name:
            pipeline_id = client.get_pipeline_id(name)
            found = find_version(client, pipeline_id, version_name) if pipeline_id else None
            if found:
                return pipeline_id, found
        package = compiled_package(pipeline)
    else:
        name = package_name(package)
    return upload(client, name, package, version_name)


def submit(host: str, pipeline: str, policy_yaml: str = "", params: dict[str, Any] | None = None, experiment: str = DEFAULT_EXPERIMENT,
           run_name: str = "", service_account: str = "", client: Any = None, package: Path | None = None, version_name: str = "",
           run: bool = True) -> Submitted:
    """Upload the pipeline version and (unless ``run`` is False) start one run with the policy and parameters."""
    client = client or connect(host)
    pipeline_id, version_id = _pipeline_version(client, pipeline, package, version_name)
    if not run:
        return Submitted(pipeline_id, version_id, "", url=f"{host.rstrip('/')}/#/pipelines/details/{pipeline_id}/version/{version_id}")
    if not policy_yaml:
        raise ConfigError("a run needs a policy", fix="pass --policy, or --no-run to only upload the pipeline")
    exp = client.create_experiment(name=experiment)
    created = client.run_pipeline(experiment_id=exp.experiment_id, job_name=run_name or pipeline, pipeline_id=pipeline_id, version_id=version_id,
                                  params=run_parameters(pipeline, policy_yaml, params), service_account=service_account or None)
    return Submitted(pipeline_id, version_id, exp.experiment_id, run_id=created.run_id, url=f"{host.rstrip('/')}/#/runs/details/{created.run_id}")


def schedule(host: str, pipeline: str, policy_yaml: str, cron: str, params: dict[str, Any] | None = None, experiment: str = DEFAULT_EXPERIMENT,
             name: str = "", service_account: str = "", client: Any = None, version_name: str = "") -> Submitted:
    """Create an enabled recurring run on ``cron`` (no catch-up, one at a time), replacing one of the same name."""
    cron6 = kfp_cron(cron)
    client = client or connect(host)
    pipeline_id, version_id = _pipeline_version(client, pipeline, None, version_name)
    exp = client.create_experiment(name=experiment)
    name = name or pipeline
    # KFP cannot update a recurring run's version or cron: replace it, so a GitOps sync converges.
    existing = client.list_recurring_runs(experiment_id=exp.experiment_id, page_size=200).recurring_runs or []
    for job in existing:
        if job.display_name == name:
            client.delete_recurring_run(job.recurring_run_id)
    job = client.create_recurring_run(experiment_id=exp.experiment_id, job_name=name, cron_expression=cron6, max_concurrency=1, no_catchup=True,
                                      params=run_parameters(pipeline, policy_yaml, params), pipeline_id=pipeline_id, version_id=version_id,
                                      service_account=service_account or None)
    return Submitted(pipeline_id, version_id, exp.experiment_id, recurring_run_id=job.recurring_run_id,
                     url=f"{host.rstrip('/')}/#/recurringrun/details/{job.recurring_run_id}")

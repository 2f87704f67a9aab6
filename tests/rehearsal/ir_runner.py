"""A small KFP IR runner: executes a *compiled* pipeline YAML the way a KFP backend on Kubernetes does.

It reads the same file ``driftloop compile`` writes and ``driftloop submit`` uploads (the
pipeline spec plus the kfp-kubernetes platform spec) and walks its DAG: sub-DAGs,
``dsl.If`` trigger conditions, ``dsl.ExitHandler`` (``ALL_UPSTREAM_TASKS_COMPLETED`` plus a
``PipelineTaskFinalStatus`` input), task dependencies, retries and caching. A task starts as
soon as the tasks it depends on have finished, so independent tasks run at the same time.

Each attempt of each task is a "pod": its own subprocess with a fresh empty working
directory, HOME and /tmp, and an environment built only from

- the image's ``ENV`` (:data:`IMAGE_ENV`, as the Dockerfile sets it, /tmp being the pod's own),
- what the kubelet adds to every pod (:attr:`PodEnvironment.pod_env`),
- the IR's executor ``env``, and the platform spec's ``configMapAsEnv`` / ``secretAsEnv``
  (a missing required Secret, ConfigMap or key fails the task with one line naming it),
- ``pvcMount``: the claim's host folder (:attr:`PodEnvironment.volumes`) stands in for the
  mount path; parameters naming a path under the mount are translated to the folder.

Inputs and outputs pass as the IR says: parameters through the executor input and
``executor_output.json``, artifacts as files in a per-run object store folder (never a
shared working directory). Retries follow the task's retry policy (backoff scaled by
``backoff_scale``); caching follows KFP: the key is the component spec plus the task's
inputs, and a task whose caching is disabled always runs.

The DAG plumbing is kfp.local's (``kfp.local.io.IOStore``, ``OrchestratorUtils``,
``executor_input_utils``, ``placeholder_utils``, ``executor_output_utils``, ``LocalCache``);
what a cluster does differently (pods, env, mounts, conditions on task inputs) is here.

>>> env = PodEnvironment(pod_env={"PYTHONPATH": "/app"})
>>> env.config_map_value("driftloop-settings", "X", optional=True) is None
True
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ALL_UPSTREAM_COMPLETED = "ALL_UPSTREAM_TASKS_COMPLETED"
SUCCEEDED, FAILED, SKIPPED, NOT_TRIGGERED = "SUCCEEDED", "FAILED", "SKIPPED", "NOT_TRIGGERED"


def image_env(pod: Path) -> dict[str, str]:
    """The image's ``ENV`` (Dockerfile) for a pod whose /tmp is ``pod/tmp``; the venv is this interpreter's.

    >>> image_env(Path("/p"))["HOME"]
    '/p/tmp'
    """
    tmp = str(pod / "tmp")
    venv_bin = str(Path(sys.executable).parent)
    return {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": str(Path(venv_bin).parent), "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1", "HOME": tmp, "TMPDIR": tmp, "DRIFTLOOP_WORKDIR": f"{tmp}/driftloop", "MPLCONFIGDIR": f"{tmp}/matplotlib"}


class PodError(Exception):
    """A pod that cannot start (missing Secret/ConfigMap/key, unbound PVC): one line naming it and the fix."""


@dataclass
class PodEnvironment:
    """What the cluster gives a task's pod: Secrets, ConfigMaps, PVC folders and the kubelet's env."""

    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    volumes: dict[str, Path] = field(default_factory=dict)
    pod_env: dict[str, str] = field(default_factory=dict)
    namespace: str = "default"

    @classmethod
    def from_cluster(cls, cluster: Any, overlay: str | None = None) -> PodEnvironment:
        """The environment of ``cluster`` (tests/rehearsal/cluster.Cluster), with a kustomize overlay's ConfigMaps when named."""
        maps = cluster.overlay(overlay) if overlay else cluster.config_maps
        return cls(dict(cluster.secrets), {k: dict(v) for k, v in maps.items()}, dict(cluster.volumes), dict(cluster.pod_env), cluster.namespace)

    def secret_value(self, name: str, key: str, optional: bool) -> str | None:
        """A Secret's key, None when optional and absent; PodError when required and absent."""
        if name not in self.secrets:
            if optional:
                return None
            raise PodError(f"secret {name!r} not found in namespace {self.namespace} (CreateContainerConfigError); "
                           f"fix: kubectl -n {self.namespace} create secret generic {name} --from-literal={key}=...")
        if key not in self.secrets[name]:
            if optional:
                return None
            raise PodError(f"secret {name!r} has no key {key!r} (CreateContainerConfigError); "
                           f"fix: add it: kubectl -n {self.namespace} patch secret {name} --type merge -p '{{\"stringData\":{{\"{key}\":\"...\"}}}}'")
        return self.secrets[name][key]

    def config_map_value(self, name: str, key: str, optional: bool) -> str | None:
        """A ConfigMap's key, None when optional and absent; PodError when required and absent."""
        value = self.config_maps.get(name, {}).get(key)
        if value is None and not optional:
            what = f"configmap {name!r} has no key {key!r}" if name in self.config_maps else f"configmap {name!r} not found in namespace {self.namespace}"
            raise PodError(f"{what} (CreateContainerConfigError); fix: kubectl apply -k manifests/overlays/<env> (it creates {name})")
        return value

    def volume(self, claim: str) -> Path:
        """The host folder standing in for PVC ``claim``; PodError when no such claim is bound."""
        if claim not in self.volumes:
            raise PodError(f"persistentvolumeclaim {claim!r} not found in namespace {self.namespace} (pod stays Pending); "
                           f"fix: create the claim (manifests/base/log-sink.yaml) before running the pipeline")
        return Path(self.volumes[claim])


def _name(constant: str, parameter: Mapping[str, Any] | None) -> str:
    """A resource name from the platform spec: the literal or the runtime constant."""
    return constant or str(((parameter or {}).get("runtimeValue") or {}).get("constant", ""))


def platform_env(platform: Mapping[str, Any], env: PodEnvironment) -> tuple[dict[str, str], dict[str, Path]]:
    """Env vars (ConfigMaps then Secrets, as the KFP driver adds them) and mounts (mount path -> host folder) of one executor.

    >>> spec = {"secretAsEnv": [{"secretName": "s", "optional": True, "keyToEnv": [{"secretKey": "url", "envVar": "URL"}]}]}
    >>> platform_env(spec, PodEnvironment(secrets={"s": {"url": "postgresql://db"}}))
    ({'URL': 'postgresql://db'}, {})
    """
    out: dict[str, str] = {}
    for item in platform.get("configMapAsEnv", []):
        name = _name(item.get("configMapName", ""), item.get("configMapNameParameter"))
        for pair in item.get("keyToEnv", []):
            value = env.config_map_value(name, pair["configMapKey"], bool(item.get("optional", False)))
            if value is not None:
                out[pair["envVar"]] = value
    for item in platform.get("secretAsEnv", []):
        name = _name(item.get("secretName", ""), item.get("secretNameParameter"))
        for pair in item.get("keyToEnv", []):
            value = env.secret_value(name, pair["secretKey"], bool(item.get("optional", False)))
            if value is not None:
                out[pair["envVar"]] = value
    mounts = {item["mountPath"]: env.volume(_name(item.get("constant", ""), item.get("pvcNameParameter"))) for item in platform.get("pvcMount", [])}
    return out, mounts


def translate(value: str, mounts: Mapping[str, Path]) -> str:
    """``value`` with a leading mount path replaced by its host folder (what the pod sees at that path).

    >>> translate("/var/log/x/a.parquet", {"/var/log/x": Path("/host/pvc")})
    '/host/pvc/a.parquet'
    >>> translate("/var/log/xy", {"/var/log/x": Path("/host/pvc")})
    '/var/log/xy'
    """
    for mount, host in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        if value == mount or value.startswith(mount.rstrip("/") + "/"):
            return str(host) + value[len(mount.rstrip("/")):]
    return value


_CONDITION_INPUT = re.compile(r"inputs\.parameter_values\['([^']+)'\]")


def evaluate_condition(condition: str, arguments: Mapping[str, Any]) -> bool:
    """A ``triggerPolicy.condition`` (CEL over the task's own inputs) evaluated on ``arguments``.

    >>> evaluate_condition("inputs.parameter_values['pipelinechannel--action'] == 'retrain'", {"pipelinechannel--action": "none"})
    False
    >>> evaluate_condition("!(inputs.parameter_values['a'] == 'x') && inputs.parameter_values['b'] != 'none'", {"a": "y", "b": "k"})
    True
    """
    values: dict[str, Any] = {}

    def variable(match: re.Match[str]) -> str:
        if match.group(1) not in arguments:
            raise KeyError(f"condition {condition!r} names input {match.group(1)!r} the task does not have")
        values[f"_v{len(values)}"] = arguments[match.group(1)]
        return f"_v{len(values) - 1}"

    parts = re.split(r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", _CONDITION_INPUT.sub(variable, condition))
    for i in range(0, len(parts), 2):  # CEL operators and literals outside string literals
        code = parts[i].replace("&&", " and ").replace("||", " or ")
        code = re.sub(r"!(?!=)", " not ", code)
        parts[i] = re.sub(r"\bfalse\b", "False", re.sub(r"\btrue\b", "True", re.sub(r"\bnull\b", "None", code)))
    names = {"int": int, "float": float, "str": str, "bool": bool, **values}
    return bool(eval(compile(ast.parse("".join(parts).strip(), mode="eval"), "<condition>", "eval"), {"__builtins__": {}}, names))


@dataclass
class TaskRecord:
    """One task of a run: its DAG path, display name, final status, seconds, exit code and outputs (parameters only)."""

    pipeline: str
    task: str
    name: str
    status: str
    seconds: float = 0.0
    exit_code: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    cached: bool = False
    error: str = ""
    log: str = ""

    def row(self) -> dict[str, Any]:
        """The summary.json row."""
        return {"pipeline": self.pipeline, "task": self.task, "seconds": round(self.seconds, 2), "exit_code": self.exit_code}


@dataclass
class RunRecord:
    """A pipeline run: status, pipeline outputs and every task (containers and DAGs) in the order they finished."""

    pipeline: str
    run_id: str
    status: str = SUCCEEDED
    outputs: dict[str, Any] = field(default_factory=dict)
    tasks: list[TaskRecord] = field(default_factory=list)
    seconds: float = 0.0

    def task(self, name: str) -> TaskRecord:
        """The task whose display name or last path part is ``name`` (KeyError naming the tasks otherwise)."""
        for t in self.tasks:
            if name in (t.name, t.task.rsplit("/", 1)[-1], t.task):
                return t
        raise KeyError(f"no task {name!r} in run {self.pipeline}: {', '.join(t.task for t in self.tasks)}")

    def ran(self) -> list[TaskRecord]:
        """Container tasks that executed (not cached, not skipped)."""
        return [t for t in self.tasks if t.exit_code is not None and not t.cached]

    def failure(self) -> str:
        """The first failed task's one-line error ("" when the run succeeded)."""
        return next((f"{t.task}: {t.error}" for t in self.tasks if t.status == FAILED and t.error), "")


def load_ir(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The PipelineSpec and the kfp-kubernetes executors' platform spec of a compiled YAML."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    spec = json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
    platform: dict[str, Any] = {}
    for doc in docs[1:]:
        platform.update(doc.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {}))
    return spec, platform


def _error_line(log: str) -> str:
    """The last meaningful line of a failed pod's log (the exception line)."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Unavailable|Interrupt|Exit)\b.*", line):
            return line[:500]
    return lines[-1][:500] if lines else ""


class _Run:
    def __init__(self, spec: Any, platform: dict[str, Any], env: PodEnvironment, root: Path, *, cache: bool, backoff_scale: float,
                 task_timeout: float, out: Callable[[str], None], on_start: Callable[[str], None] | None = None) -> None:
        from google.protobuf import json_format
        from kfp.local.cache import LocalCache
        from kfp.pipeline_spec import pipeline_spec_pb2

        deployment = json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec), pipeline_spec_pb2.PipelineDeploymentConfig())
        self.spec, self.platform, self.env, self.out, self.on_start = spec, platform, env, out, on_start
        self.components = dict(spec.components)
        self.executors = dict(deployment.executors)
        self.run_id = f"{spec.pipeline_info.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.root = root
        self.store = root / "object-store"
        self.pods = root / "pods" / self.run_id
        self.cache = LocalCache(str(root / "cache")) if cache else None
        self.backoff_scale, self.task_timeout = backoff_scale, task_timeout
        self.record = RunRecord(spec.pipeline_info.name, self.run_id)

    def run_dag(self, dag: Any, store: Any, prefix: str) -> str:
        """Run a DAG's tasks as a KFP backend does: each one as soon as every task it depends on has finished,
        independent tasks at the same time (one thread per running task; its pod is a process)."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        tasks = dict(dag.tasks)
        states: dict[str, str] = {}
        waiting, running = set(tasks), {}
        with ThreadPoolExecutor(max_workers=max(1, len(tasks)), thread_name_prefix=f"dag-{prefix or 'root'}") as pool:
            while waiting or running:
                for name in sorted(n for n in waiting if all(d in states for d in tasks[n].dependent_tasks if d in tasks)):
                    waiting.discard(name)
                    running[pool.submit(self.run_task, tasks[name], name, states, store, prefix)] = name
                if not running:
                    raise ValueError(f"tasks {sorted(waiting)} wait on each other (a dependency cycle in the IR)")
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    states[running.pop(future)] = future.result()
        return FAILED if any(s in (FAILED, NOT_TRIGGERED) for s in states.values()) else SUCCEEDED

    def run_task(self, task: Any, name: str, states: dict[str, str], store: Any, prefix: str) -> str:
        """One task of a DAG whose upstream tasks have finished (their states in ``states``); returns its state."""
        from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils
        from kfp.pipeline_spec import pipeline_spec_pb2

        path = f"{prefix}{name}"
        display = task.task_info.name or name
        upstream = [states.get(d, SUCCEEDED) for d in task.dependent_tasks]
        all_completed = task.trigger_policy.strategy == pipeline_spec_pb2.PipelineTaskSpec.TriggerPolicy.TriggerStrategy.Value(ALL_UPSTREAM_COMPLETED)
        if not all_completed and any(s in (FAILED, NOT_TRIGGERED) for s in upstream):
            self._finish(TaskRecord(self.record.pipeline, path, display, NOT_TRIGGERED, error="an upstream task failed"))
            return NOT_TRIGGERED
        started = time.monotonic()
        try:
            arguments = OrchestratorUtils.make_task_arguments(task.inputs, store)
        except (ValueError, KeyError) as exc:
            self._finish(TaskRecord(self.record.pipeline, path, display, FAILED, error=f"inputs: {exc}"))
            return FAILED
        if task.trigger_policy.condition and not evaluate_condition(task.trigger_policy.condition, arguments):
            self._finish(TaskRecord(self.record.pipeline, path, display, SKIPPED, error=f"condition false: {task.trigger_policy.condition}"))
            return SKIPPED
        component = self.components[task.component_ref.name]
        if component.WhichOneof("implementation") == "dag":
            outputs, state = self.run_sub_dag(component, arguments, path)
            self._finish(TaskRecord(self.record.pipeline, path, display, state, time.monotonic() - started,
                                    outputs={k: v for k, v in outputs.items() if not hasattr(v, "uri")}))
        else:
            rec = self.run_container(task, component, arguments, path, display)
            outputs, state = rec.outputs, rec.status
        store.put_task_status(name, state)
        for key, value in outputs.items():
            store.put_task_output(name, key, value)
        return state

    def run_sub_dag(self, component: Any, arguments: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
        from kfp.local.io import IOStore
        from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils

        store = IOStore()  # a backend passes a sub-DAG only its declared inputs
        for key, value in OrchestratorUtils.join_user_inputs_and_defaults(arguments, component.input_definitions).items():
            store.put_parent_input(key, value)
        state = self.run_dag(component.dag, store, f"{path}/")
        try:
            outputs = OrchestratorUtils.get_dag_outputs(component.dag.outputs, store)
        except (ValueError, KeyError):
            outputs = {}  # a skipped branch produced none
        return outputs, state

    def _cache_key(self, component: Any, container: Any, arguments: dict[str, Any]) -> str:
        from google.protobuf import json_format

        assert self.cache is not None
        body = json_format.MessageToJson(component, sort_keys=True) + json_format.MessageToJson(container, sort_keys=True)
        return self.cache.compute_key(component_name=hashlib.sha256(body.encode()).hexdigest(), image=container.image,
                                      full_command=list(container.command) + list(container.args), arguments=arguments,
                                      env_vars={e.name: e.value for e in container.env})

    def run_container(self, task: Any, component: Any, arguments: dict[str, Any], path: str, display: str) -> TaskRecord:
        container = self.executors[component.executor_label].container
        rec = TaskRecord(self.record.pipeline, path, display, FAILED)
        key = self._cache_key(component, container, arguments) if (self.cache is not None and task.caching_options.enable_cache) else None
        if key is not None:
            hit = self.cache.get(key)  # type: ignore[union-attr]
            if hit is not None:
                rec.status, rec.cached, rec.outputs, rec.exit_code = SUCCEEDED, True, hit, 0
                return self._finish(rec, hit)
        policy = task.retry_policy
        retries = max(policy.max_retry_count, 0)
        backoff = policy.backoff_duration.seconds if policy.HasField("backoff_duration") else 0
        factor = policy.backoff_factor if policy.backoff_factor > 0 else 2.0
        ceiling = policy.backoff_max_duration.seconds if policy.HasField("backoff_max_duration") else 3600
        if self.on_start is not None:
            self.on_start(path)
        started = time.monotonic()
        outputs: dict[str, Any] = {}
        for attempt in range(retries + 1):
            rec.attempts = attempt + 1
            try:
                outputs, rec.exit_code, rec.log = self._pod(component, container, arguments, f"{path}#{attempt}")
                rec.error = "" if rec.exit_code == 0 else _error_line(Path(rec.log).read_text(errors="replace"))
            except PodError as exc:
                rec.exit_code, rec.error = None, str(exc)
            if rec.exit_code == 0:
                rec.status = SUCCEEDED
                break
            if attempt < retries:
                delay = min(backoff * factor**attempt, ceiling) * self.backoff_scale
                self.out(f"  [{self.record.pipeline}] {path}: attempt {attempt + 1}/{retries + 1} failed ({rec.error}); retry in {delay:.1f}s")
                time.sleep(delay)
        rec.seconds = time.monotonic() - started
        if rec.status == SUCCEEDED and key is not None:
            self.cache.put(key, outputs)  # type: ignore[union-attr]
        return self._finish(rec, outputs)

    def _pod(self, component: Any, container: Any, arguments: dict[str, Any], pod_name: str) -> tuple[dict[str, Any], int, str]:
        from kfp.local import executor_input_utils, executor_output_utils, placeholder_utils

        extra, mounts = platform_env(self.platform.get(component.executor_label, {}), self.env)
        pod = self.pods / re.sub(r"[^\w.#-]+", "_", pod_name)
        for sub in ("work", "tmp"):
            (pod / sub).mkdir(parents=True, exist_ok=True)
        # the pod's own /tmp (an emptyDir in the manifests) and its volume mounts
        all_mounts = {"/tmp": pod / "tmp", **mounts}
        declared = {**{e.name: e.value for e in container.env}, **extra}
        # container paths (the image's /tmp, a ConfigMap's /tmp/driftloop, a mount) become the pod's folders;
        # the kubelet's pod_env and paths already inside the runner root are host paths
        env = {**image_env(pod), **self.env.pod_env,
               **{k: v if v.startswith(str(self.root)) else translate(v, all_mounts) for k, v in declared.items()}}
        args = {k: translate(v, mounts) if isinstance(v, str) else v for k, v in arguments.items()}
        task_root = self.store / self.run_id / pod_name.split("#")[0]
        task_root.mkdir(parents=True, exist_ok=True)
        executor_input = executor_input_utils.construct_executor_input(component, args, str(task_root), block_input_artifact=False)
        command = placeholder_utils.replace_placeholders(
            full_command=list(container.command) + list(container.args),
            executor_input_dict=executor_input_utils.executor_input_to_dict(executor_input, component),
            pipeline_resource_name=self.run_id, task_resource_name=pod_name.split("#")[0].rsplit("/", 1)[-1],
            pipeline_root=str(self.store), unique_pipeline_id=self.run_id)
        log = pod / "log.txt"
        with log.open("w") as fh:
            try:
                code = subprocess.run(command, cwd=pod / "work", env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=self.task_timeout).returncode
            except subprocess.TimeoutExpired:
                fh.write(f"\nTimeoutError: task ran longer than {self.task_timeout:.0f}s (activeDeadlineSeconds)\n")
                code = 124
        outputs = executor_output_utils.get_outputs_for_task(executor_input, component) if code == 0 else {}
        return outputs, code, str(log)

    def _finish(self, rec: TaskRecord, outputs: dict[str, Any] | None = None) -> TaskRecord:
        if outputs is not None:
            rec.outputs = outputs
        self.record.tasks.append(rec)
        if rec.exit_code is not None or rec.status == FAILED:
            extra = " (cached)" if rec.cached else (f" after {rec.attempts} attempts" if rec.attempts > 1 else "")
            why = f": {rec.error}" if rec.status == FAILED and rec.error else ""
            self.out(f"  [{rec.pipeline}] {rec.task}: {rec.status.lower()} in {rec.seconds:.1f}s, exit {rec.exit_code}{extra}{why}")
        return rec


def run_pipeline(path: str | Path, arguments: Mapping[str, Any], env: PodEnvironment, root: str | Path, *, cache: bool = True,
                 backoff_scale: float = 1.0, task_timeout: float = 900.0, out: Callable[[str], None] = print,
                 on_start: Callable[[str], None] | None = None) -> RunRecord:
    """Run the compiled pipeline at ``path`` with ``arguments`` as a KFP backend would; return the run record.

    ``root`` holds the object store (artifacts), the cache and each pod's folder (log, work
    directory, /tmp). ``backoff_scale`` shortens the IR's retry backoff (1.0 = as compiled).
    Per-task timings are printed through ``out`` as tasks finish; ``on_start(task path)`` is
    called as each container task's first pod starts (an observer's hook, e.g. to start users).
    """
    from kfp.local.io import IOStore
    from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils

    spec, platform = load_ir(path)
    runner = _Run(spec, platform, env, Path(root), cache=cache, backoff_scale=backoff_scale, task_timeout=task_timeout, out=out, on_start=on_start)
    started = time.monotonic()
    store = IOStore()
    for key, value in OrchestratorUtils.join_user_inputs_and_defaults(dict(arguments), spec.root.input_definitions).items():
        store.put_parent_input(key, value)
    runner.record.status = runner.run_dag(spec.root.dag, store, "")
    try:
        runner.record.outputs = {k: v for k, v in OrchestratorUtils.get_dag_outputs(spec.root.dag.outputs, store).items() if not hasattr(v, "uri")}
    except (ValueError, KeyError):
        runner.record.outputs = {}
    runner.record.seconds = time.monotonic() - started
    out(f"[{runner.record.pipeline}] run {runner.record.status.lower()} in {runner.record.seconds:.1f}s")
    return runner.record


def run_manifest_job(manifest: str | Path, env: PodEnvironment, root: str | Path, *, overrides: Mapping[str, str] | None = None,
                     timeout: float = 1800.0, out: Callable[[str], None] = print) -> TaskRecord:
    """Run the first container of the Job in ``manifest`` as a pod: its command and args, its ``env`` (values and
    ``secretKeyRef``/``configMapKeyRef``) and ``envFrom`` ConfigMaps, the image's env; ``overrides`` patch env values
    (what a kustomize patch would). A Job with ``automountServiceAccountToken: false`` gets no API access.
    """
    job = next(d for d in yaml.safe_load_all(Path(manifest).read_text()) if d and d.get("kind") == "Job")
    pod_spec = job["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    name = job["metadata"]["name"]
    rec = TaskRecord(f"job/{name}", container["name"], name, FAILED)
    pod = Path(root) / "pods" / f"job-{name}-{uuid.uuid4().hex[:6]}"
    for sub in ("work", "tmp"):
        (pod / sub).mkdir(parents=True, exist_ok=True)
    kubelet = dict(env.pod_env)
    if pod_spec.get("automountServiceAccountToken") is False:
        kubelet.pop("KUBECONFIG", None)
    declared: dict[str, str] = {}
    try:
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref is None:
                continue
            if ref["name"] in env.config_maps:
                declared.update(env.config_maps[ref["name"]])
            elif not ref.get("optional"):
                raise PodError(f"configmap {ref['name']!r} not found in namespace {env.namespace} (CreateContainerConfigError); "
                               f"fix: kubectl apply -k manifests/overlays/<env> (it creates {ref['name']})")
        for item in container.get("env", []):
            ref = item.get("valueFrom", {})
            if "secretKeyRef" in ref:
                key = ref["secretKeyRef"]
                value = env.secret_value(key["name"], key["key"], bool(key.get("optional", False)))
            elif "configMapKeyRef" in ref:
                key = ref["configMapKeyRef"]
                value = env.config_map_value(key["name"], key["key"], bool(key.get("optional", False)))
            else:
                value = item.get("value", "")
            if value is not None:
                declared[item["name"]] = value
    except PodError as exc:
        rec.error = str(exc)
        out(f"  [{rec.pipeline}] {rec.task}: failed: {rec.error}")
        return rec
    declared.update(overrides or {})
    mounts = {"/tmp": pod / "tmp"}
    run_env = {**image_env(pod), **kubelet, **{k: translate(v, mounts) for k, v in declared.items()}}
    started = time.monotonic()
    log = pod / "log.txt"
    with log.open("w") as fh:
        try:
            rec.exit_code = subprocess.run(list(container.get("command", [])) + list(container.get("args", [])), cwd=pod / "work", env=run_env,
                                           stdout=fh, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            fh.write(f"\nTimeoutError: job ran longer than {timeout:.0f}s (activeDeadlineSeconds)\n")
            rec.exit_code = 124
    rec.seconds, rec.log, rec.attempts = time.monotonic() - started, str(log), 1
    rec.status = SUCCEEDED if rec.exit_code == 0 else FAILED
    rec.error = "" if rec.exit_code == 0 else _error_line(log.read_text(errors="replace"))
    out(f"  [{rec.pipeline}] {rec.task}: {rec.status.lower()} in {rec.seconds:.1f}s, exit {rec.exit_code}{': ' + rec.error if rec.error else ''}")
    return rec


def clear(root: str | Path) -> None:
    """Remove a runner root (object store, cache, pods)."""
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - a manual entry: python -m tests.rehearsal.ir_runner FILE key=value...
    result = run_pipeline(sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:]), PodEnvironment(pod_env={"PYTHONPATH": os.getcwd()}), "/tmp/ir-runner")
    print(json.dumps([t.row() for t in result.tasks], indent=1))

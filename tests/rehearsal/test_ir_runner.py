"""The IR runner on small compiled pipelines: pod isolation, If, ExitHandler, retries, caching, secrets, PVC mounts, parallel tasks."""

# No "from __future__ import annotations": KFP reads the components' real annotations.

import json
import os
from pathlib import Path

import pytest
from kfp import compiler, dsl, kubernetes
from kfp.dsl import Dataset, Input, Output, PipelineTaskFinalStatus

from tests.rehearsal.ir_runner import FAILED, SKIPPED, SUCCEEDED, PodEnvironment, run_pipeline

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
MOUNT = "/mnt/driftloop-shared"


def _component(func):  # type: ignore[no-untyped-def]
    return dsl.component(base_image="python:3.11", install_kfp_package=False)(func)


@_component
def inspect_pod(marker: str) -> str:
    import json
    import os

    return json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "cwd_files": os.listdir("."), "marker": marker})


@_component
def leave_file(name: str) -> str:
    import os
    from pathlib import Path

    Path(name).write_text("left behind")
    return os.getcwd()


@_component
def flaky(fail: bool, path: str) -> str:
    from pathlib import Path

    attempts = int(Path(path).read_text()) + 1 if Path(path).exists() else 1
    Path(path).write_text(str(attempts))
    if fail:
        raise ValueError(f"told to fail (attempt {attempts})")
    return f"attempt {attempts}"


@_component
def final_status(status: PipelineTaskFinalStatus) -> str:
    return status.state


@_component
def produce(rows: int, data: Output[Dataset]) -> None:
    from pathlib import Path

    Path(data.path).write_text("\n".join(str(i) for i in range(rows)))


@_component
def consume(data: Input[Dataset]) -> int:
    return len(open(data.path).read().splitlines())


@_component
def write_to(path: str, text: str) -> str:
    from pathlib import Path

    Path(path).write_text(text)
    return path


@_component
def read_from(path: str) -> str:
    return open(path).read()


@_component
def meet(folder: str, me: str, other: str) -> str:
    import time
    from pathlib import Path

    Path(folder, me).touch()
    deadline = time.monotonic() + 120
    while not Path(folder, other).exists():  # only a task running at the same time can create it
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} did not start while {me} ran")
        time.sleep(0.05)
    return me


@dsl.pipeline(name="fan-out")
def fan_out_pipeline(folder: str) -> str:
    left, right = meet(folder=folder, me="left", other="right"), meet(folder=folder, me="right", other="left")
    for task in (left, right):
        task.set_caching_options(False)
    return inspect_pod(marker="joined").after(left, right).output


@dsl.pipeline(name="isolation")
def isolation_pipeline(marker: str = "m") -> str:
    left = leave_file(name="left.txt")
    task = inspect_pod(marker=marker).after(left)
    kubernetes.use_config_map_as_env(task, config_map_name="settings", config_map_key_to_env={"A": "FROM_MAP", "ABSENT": "NOT_SET"}, optional=True)
    kubernetes.use_secret_as_env(task, secret_name="creds", secret_key_to_env={"url": "DB_URL"}, optional=True)
    task.set_env_variable("FROM_IR", "ir")
    return task.output


@dsl.pipeline(name="branches")
def branches_pipeline(action: str, fail: bool, counter: str) -> None:
    handler = final_status()
    with dsl.ExitHandler(handler, name="guarded"), dsl.If(action == "go", name="go"):
        step = flaky(fail=fail, path=counter)
        step.set_retry(num_retries=1, backoff_duration="30s")
        step.set_caching_options(False)


@dsl.pipeline(name="caching")
def caching_pipeline(rows: int) -> int:
    made = produce(rows=rows)
    made.set_caching_options(True)
    used = consume(data=made.outputs["data"])
    used.set_caching_options(False)
    return used.output


@dsl.pipeline(name="required-secret")
def secret_pipeline() -> str:
    task = inspect_pod(marker="x")
    kubernetes.use_secret_as_env(task, secret_name="driftloop-ledger", secret_key_to_env={"url": "DRIFTLOOP_LEDGER_URL"}, optional=False)
    return task.output


@dsl.pipeline(name="volume")
def volume_pipeline(path: str = f"{MOUNT}/note.txt") -> str:
    writer = write_to(path=path, text="through the claim")
    kubernetes.mount_pvc(writer, pvc_name="shared-claim", mount_path=MOUNT)
    reader = read_from(path=writer.output)
    kubernetes.mount_pvc(reader, pvc_name="shared-claim", mount_path=MOUNT)
    return reader.output


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("ir")
    pipelines = {"isolation": isolation_pipeline, "branches": branches_pipeline, "caching": caching_pipeline,
                 "secret": secret_pipeline, "volume": volume_pipeline, "fan-out": fan_out_pipeline}
    for name, func in pipelines.items():
        compiler.Compiler().compile(func, str(out / f"{name}.yaml"))
    return {name: out / f"{name}.yaml" for name in pipelines}


def pod_env(**kw) -> PodEnvironment:  # type: ignore[no-untyped-def]
    return PodEnvironment(pod_env={"PYTHONPATH": str(REPO)}, **kw)


def test_each_task_gets_a_fresh_pod_and_only_the_ir_environment(compiled: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_LEAK_CANARY", "from the test process")
    env = pod_env(config_maps={"settings": {"A": "a-value"}}, secrets={"creds": {"url": "postgresql://db/x"}})
    run = run_pipeline(compiled["isolation"], {"marker": "hello"}, env, tmp_path, out=lambda line: None)
    assert run.status == SUCCEEDED, run.failure()
    seen = json.loads(run.outputs["Output"])
    assert seen["marker"] == "hello"
    assert seen["cwd_files"] == []  # the first task's file stayed in its own pod
    assert seen["cwd"] != run.task("leave-file").outputs["Output"]
    assert "DRIFTLOOP_LEAK_CANARY" not in seen["env"]
    assert seen["env"]["FROM_MAP"] == "a-value" and seen["env"]["DB_URL"] == "postgresql://db/x" and seen["env"]["FROM_IR"] == "ir"
    assert "NOT_SET" not in seen["env"]  # optional ConfigMap key absent: no variable
    assert seen["env"]["HOME"] != os.environ.get("HOME") and seen["env"]["HOME"].startswith(str(tmp_path))
    assert seen["env"]["DRIFTLOOP_WORKDIR"].startswith(str(tmp_path))  # the image's /tmp/driftloop is the pod's own /tmp
    assert [t.exit_code for t in run.ran()] == [0, 0]


def test_if_false_skips_and_the_exit_handler_sees_success(compiled: dict[str, Path], tmp_path: Path) -> None:
    counter = tmp_path / "count"
    run = run_pipeline(compiled["branches"], {"action": "stop", "fail": False, "counter": str(counter)}, pod_env(), tmp_path, out=lambda line: None)
    assert run.status == SUCCEEDED
    assert run.task("go").status == SKIPPED and not counter.exists()
    assert run.task("final-status").outputs["Output"] == "SUCCEEDED"


def test_a_failing_task_is_retried_then_the_exit_handler_sees_failure(compiled: dict[str, Path], tmp_path: Path) -> None:
    counter = tmp_path / "count"
    lines: list[str] = []
    run = run_pipeline(compiled["branches"], {"action": "go", "fail": True, "counter": str(counter)}, pod_env(), tmp_path, backoff_scale=0.0, out=lines.append)
    assert run.status == FAILED
    step = run.task("flaky")
    assert step.attempts == 2 and counter.read_text() == "2" and step.exit_code == 1
    assert step.error == "ValueError: told to fail (attempt 2)"
    assert run.task("final-status").outputs["Output"] == "FAILED"  # the exit handler ran anyway
    assert any("flaky: failed in" in line for line in lines)


def test_caching_reuses_a_pure_step_and_always_reruns_an_uncached_one(compiled: dict[str, Path], tmp_path: Path) -> None:
    first = run_pipeline(compiled["caching"], {"rows": 3}, pod_env(), tmp_path, out=lambda line: None)
    second = run_pipeline(compiled["caching"], {"rows": 3}, pod_env(), tmp_path, out=lambda line: None)
    third = run_pipeline(compiled["caching"], {"rows": 5}, pod_env(), tmp_path, out=lambda line: None)
    assert first.outputs["Output"] == second.outputs["Output"] == 3 and third.outputs["Output"] == 5
    assert not first.task("produce").cached and second.task("produce").cached and not third.task("produce").cached
    assert not second.task("consume").cached and second.task("consume").exit_code == 0  # caching disabled: runs every time


def test_a_missing_required_secret_fails_the_task_with_one_line(compiled: dict[str, Path], tmp_path: Path) -> None:
    run = run_pipeline(compiled["secret"], {}, pod_env(namespace="driftloop"), tmp_path, out=lambda line: None)
    assert run.status == FAILED
    assert run.failure() == ("inspect-pod: secret 'driftloop-ledger' not found in namespace driftloop (CreateContainerConfigError); "
                             "fix: kubectl -n driftloop create secret generic driftloop-ledger --from-literal=url=...")
    run = run_pipeline(compiled["secret"], {}, pod_env(secrets={"driftloop-ledger": {"user": "x"}}), tmp_path, out=lambda line: None)
    assert "secret 'driftloop-ledger' has no key 'url'" in run.failure() and "\n" not in run.failure()


def test_a_pvc_mount_is_the_claims_folder_shared_between_pods(compiled: dict[str, Path], tmp_path: Path) -> None:
    claim = tmp_path / "claim"
    claim.mkdir()
    run = run_pipeline(compiled["volume"], {}, pod_env(volumes={"shared-claim": claim}), tmp_path / "run", out=lambda line: None)
    assert run.status == SUCCEEDED, run.failure()
    assert run.outputs["Output"] == "through the claim" and (claim / "note.txt").read_text() == "through the claim"
    unbound = run_pipeline(compiled["volume"], {}, pod_env(), tmp_path / "run2", out=lambda line: None)
    assert unbound.status == FAILED and "persistentvolumeclaim 'shared-claim' not found" in unbound.failure()


def test_independent_tasks_run_at_the_same_time_and_a_join_waits_for_both(compiled: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "meeting"
    folder.mkdir()
    run = run_pipeline(compiled["fan-out"], {"folder": str(folder)}, pod_env(), tmp_path / "run", out=lambda line: None)
    assert run.status == SUCCEEDED, run.failure()  # run one after the other, each would wait for the other in vain
    assert json.loads(run.outputs["Output"])["marker"] == "joined"
    assert [t.name for t in run.tasks][-1] == "inspect-pod"

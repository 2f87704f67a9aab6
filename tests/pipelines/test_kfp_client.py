"""submit / schedule through the real kfp.Client against a stand-in KFP v2beta1 API on localhost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from components.errors import ConfigError, ServiceUnavailable
from driftloop.cli import main
from pipelines import client
from tests.conftest import free_port
from tests.pipelines.kfp_standin import KfpStandIn

pytestmark = pytest.mark.integration

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture
def kfp_api() -> Iterator[KfpStandIn]:
    with KfpStandIn(free_port()) as api:
        yield api


def test_submit_uploads_the_compiled_pipeline_and_starts_a_run_with_the_policy(kfp_api: KfpStandIn) -> None:
    policy = (POLICIES / "churn.yaml").read_text()
    done = client.submit(kfp_api.url, "monitor", policy, {"current_end": "2025-09-01"}, run_name="churn-monitor", service_account="sa-x")

    upload = kfp_api.state.calls("POST", "/pipelines/upload")
    assert len(upload) == 1
    assert upload[0].headers["Content-Type"].startswith("multipart/form-data")
    assert upload[0].query["name"] == ["driftloop-monitor"]
    filename, body = upload[0].upload()
    spec, platform = yaml.safe_load_all(body)
    assert filename.endswith("monitor.yaml")
    assert spec["pipelineInfo"]["name"] == "driftloop-monitor"
    assert "decide" in spec["root"]["dag"]["tasks"]
    # The cluster build carries the Kubernetes secrets the tasks read as env.
    secrets = str(platform["platforms"]["kubernetes"])
    assert "driftloop-mlflow" in secrets and "driftloop-feast" in secrets

    run = kfp_api.state.calls("POST", "/runs")[0].json()
    assert run["display_name"] == "churn-monitor"
    assert run["service_account"] == "sa-x"
    assert run["runtime_config"]["parameters"] == {"policy": policy, "current_end": "2025-09-01"}
    assert run["pipeline_version_reference"] == {"pipeline_id": done.pipeline_id, "pipeline_version_id": done.version_id}
    assert run["experiment_id"] == done.experiment_id
    assert done.run_id in kfp_api.state.runs


def test_resubmitting_reuses_the_pipeline_and_versions_only_changed_yaml(kfp_api: KfpStandIn) -> None:
    policy = (POLICIES / "churn.yaml").read_text()
    first = client.submit(kfp_api.url, "monitor", policy)
    second = client.submit(kfp_api.url, "monitor", policy)
    third = client.submit(kfp_api.url, "monitor", policy)

    assert first.pipeline_id == second.pipeline_id == third.pipeline_id
    assert len(kfp_api.state.calls("POST", "/pipelines/upload")) == 1
    # One explicit version named by the YAML hash, then reused: the same YAML is not uploaded twice.
    versions = kfp_api.state.calls("POST", "/pipelines/upload_version")
    assert len(versions) == 1
    assert versions[0].query["pipelineid"] == [first.pipeline_id]
    assert versions[0].query["name"][0].startswith("v0.1.0-")
    assert second.version_id == third.version_id
    assert len(kfp_api.state.experiments) == 1  # the experiment is found by name, not recreated


@pytest.mark.parametrize(("name", "cron"), [("churn", "0 0 6 1 * *"), ("fraud", "0 0 * * * *")])
def test_schedule_creates_a_recurring_run_on_the_policy_cron(kfp_api: KfpStandIn, name: str, cron: str) -> None:
    policy = (POLICIES / f"{name}.yaml").read_text()
    done = client.schedule(kfp_api.url, "monitor", policy, yaml.safe_load(policy)["schedule"], name=f"{name}-monitor")

    body = kfp_api.state.calls("POST", "/recurringruns")[0].json()
    assert body["trigger"]["cron_schedule"]["cron"] == cron
    assert body["mode"] == "ENABLE"
    assert body["max_concurrency"] == "1" or body["max_concurrency"] == 1
    assert body["no_catchup"] is True
    assert body["runtime_config"]["parameters"]["policy"] == policy
    assert body["display_name"] == f"{name}-monitor"
    assert done.recurring_run_id in kfp_api.state.recurring_runs


def test_cli_schedule_reads_the_cron_from_the_policy(kfp_api: KfpStandIn, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "--host", kfp_api.url, "--policy", "fraud", "--pipeline", "monitor"]) == 0
    assert "recurring run" in capsys.readouterr().out
    body = kfp_api.state.calls("POST", "/recurringruns")[0].json()
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 * * * *"
    assert body["service_account"] == "driftloop-pipeline"


def test_cli_submit_with_params(kfp_api: KfpStandIn, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["submit", "--host", kfp_api.url, "--policy", "credit", "--pipeline", "monitor", "--param", "current_end=2025-09-01"])
    assert code == 0, capsys.readouterr().err
    params = kfp_api.state.calls("POST", "/runs")[0].json()["runtime_config"]["parameters"]
    assert params["current_end"] == "2025-09-01"
    assert "model: credit" in params["policy"]


@pytest.mark.parametrize(("where", "typo"), [("feature", "no_such_feature"), ("monitor", "accuracy_flor")])
def test_bad_policy_fails_before_anything_is_sent(kfp_api: KfpStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, typo: str) -> None:
    raw = yaml.safe_load((POLICIES / "churn.yaml").read_text())
    if where == "feature":
        raw["monitors"][1]["features"] = ["tenure_months", typo]
    else:
        raw["actions"][0]["when"] = [typo]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))

    assert main(["submit", "--host", kfp_api.url, "--policy", str(bad), "--pipeline", "monitor"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert typo in err
    assert kfp_api.state.requests == []


def test_bad_param_and_missing_schedule_are_config_errors(kfp_api: KfpStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "--host", kfp_api.url, "--policy", "churn", "--param", "current_end"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    raw = yaml.safe_load((POLICIES / "churn.yaml").read_text())
    raw.pop("schedule")
    path = tmp_path / "noschedule.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["schedule", "--host", kfp_api.url, "--policy", str(path)]) == 2
    assert "has no schedule" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not a cron"):
        client.kfp_cron("every hour")


def test_unreachable_server_is_service_unavailable() -> None:
    with pytest.raises(ServiceUnavailable, match="not reachable"):
        client.connect(f"http://127.0.0.1:{free_port()}")


def test_gitops_sync_uploads_a_package_then_schedules_that_version_once(kfp_api: KfpStandIn, tmp_path: Path) -> None:
    """What the manifests' PostSync job runs: upload every compiled YAML, then (re)schedule per policy."""
    from pipelines.compile import compile_pipeline

    package = compile_pipeline("monitor", tmp_path / "monitor.yaml")
    for _ in range(2):  # a second sync with the same version converges instead of duplicating
        assert main(["submit", "--host", kfp_api.url, "--package", str(package), "--version-name", "0.1.0-sync1", "--no-run"]) == 0
        assert main(["schedule", "--host", kfp_api.url, "--policy", "churn", "--pipeline", "monitor", "--version-name", "0.1.0-sync1"]) == 0

    assert len(kfp_api.state.calls("POST", "/pipelines/upload")) == 1
    versions = kfp_api.state.calls("POST", "/pipelines/upload_version")
    assert [v.query["name"] for v in versions] == [["0.1.0-sync1"]]
    assert kfp_api.state.calls("POST", "/runs") == []
    jobs = list(kfp_api.state.recurring_runs.values())
    assert len(jobs) == 1 and len(kfp_api.state.calls("DELETE", f"/recurringruns/{jobs[0]['recurring_run_id']}")) == 0
    assert len(kfp_api.state.calls("POST", "/recurringruns")) == 2
    assert len([r for r in kfp_api.state.requests if r.method == "DELETE"]) == 1  # the first sync's job was replaced
    (pid, vs), = kfp_api.state.versions.items()
    sync_version = next(v["pipeline_version_id"] for v in vs if v["display_name"] == "0.1.0-sync1")
    assert jobs[0]["pipeline_version_reference"]["pipeline_version_id"] == sync_version


def test_policy_feature_missing_from_the_feature_service_fails_submit(kfp_api: KfpStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = yaml.safe_load((POLICIES / "churn.yaml").read_text())
    raw["features"].append("lifetime_value")  # valid for the schema, but churn_v1 does not serve it
    bad = tmp_path / "unserved.yaml"
    bad.write_text(yaml.safe_dump(raw))
    assert main(["submit", "--host", kfp_api.url, "--policy", str(bad), "--pipeline", "monitor"]) == 2
    err = capsys.readouterr().err
    assert "['lifetime_value'] are not served by feature service 'churn_v1'" in err
    assert kfp_api.state.requests == []
    raw["features"].remove("lifetime_value")
    raw["feature_service"] = "churn_v9"
    bad.write_text(yaml.safe_dump(raw))
    assert main(["compile", "--out", str(tmp_path / "o"), "--policy", str(bad)]) == 2
    assert "'churn_v9' is not defined" in capsys.readouterr().err


def test_cli_emergency_submits_the_loop_with_the_emergency_flag(kfp_api: KfpStandIn, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "--host", kfp_api.url, "--policy", "fraud", "--emergency"]) == 0, capsys.readouterr().err
    run = kfp_api.state.calls("POST", "/runs")[0].json()
    assert run["display_name"] == "fraud-monitor_and_retrain-emergency"
    assert run["runtime_config"]["parameters"]["emergency"] is True
    _, body = kfp_api.state.calls("POST", "/pipelines/upload")[0].upload()
    assert next(yaml.safe_load_all(body))["pipelineInfo"]["name"] == "driftloop-monitor-and-retrain"
    assert main(["submit", "--host", kfp_api.url, "--policy", "fraud", "--pipeline", "train", "--emergency"]) == 2
    assert "--emergency applies to the monitor_and_retrain pipeline" in capsys.readouterr().err

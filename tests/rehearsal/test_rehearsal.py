"""The cluster loop, rehearsed end to end (issue 12): the compiled cluster pipelines run pod by pod against real shared services.

Order matters (one cluster, one story, the way a platform team would see it):

1. the feature-load Job of manifests/base loads churn (fraud later, for its case) into the PostgreSQL offline
   store and Redis; the ``materialize_and_check`` pipeline checks and materializes a churn batch;
2. the ``train`` pipeline makes the churn champion (data before 2025-05); the InferenceService
   ``churn`` serves it;
3. ``quiet-window``: May 2025 (before the onset) decides ``none``;
4. ``failed-train-retries``: August 2025 with a training step that fails (a policy whose
   trainer parameters sklearn rejects) -> the exit handler releases the ledger claim;
   the same window with the shipped policy retrains;
5. ``promote``: that run's Kubernetes canary moves ``canaryTrafficPercent`` step by step
   (accuracy fed from the prediction log and the label store) and promotes;
6. ``rerun-once``: the same window again decides ``none`` (the ledger is PostgreSQL);
7. ``rollback``: a deliberately bad challenger, registered through the registry API, is
   rolled out by the compiled ``rollout`` pipeline and rolled back;
8. ``alerts-fire``, ``webhook``, ``overlay-overrides``: what the runs above left in
   Prometheus, the webhook receiver and the InferenceService's traffic history;
9. ``fraud-emergency``: fraud's Keras champion, then a post-onset window whose error stream
   fires the policy's emergency action.

Every pipeline runs on the dev overlay's ConfigMap (short canary: DRIFTLOOP_ROLLOUT_STEPS=50,100).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.rehearsal.ir_runner import (
    FAILED,
    SKIPPED,
    SUCCEEDED,
    PodEnvironment,
    RunRecord,
    run_manifest_job,
    run_pipeline,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FEATURE_LOAD_JOB = REPO / "manifests" / "base" / "feature-load-job.yaml"
OVERLAY = "dev"
CHURN_CHAMPION_END = "2025-05-01T00:00:00+00:00"
QUIET = ("2025-05-01T00:00:00+00:00", "2025-06-01T00:00:00+00:00")
DRIFTED = ("2025-08-01T00:00:00+00:00", "2025-09-01T00:00:00+00:00")
FRAUD_CHAMPION_END = "2025-03-07T00:00:00+00:00"
FRAUD_DRIFTED = ("2025-03-10T00:00:00+00:00", "2025-03-10T12:00:00+00:00")


class Rehearsal:
    """Compiled pipelines, run on the cluster by the IR runner; every task row goes to the summary."""

    def __init__(self, cluster: Any, summary: Any, root: Path) -> None:
        from pipelines.compile import compile_all

        self.cluster, self.summary, self.root = cluster, summary, root
        self.compiled = {p.stem: p for p in compile_all(root / "compiled", "cluster")}  # what `driftloop compile` writes
        self.state: dict[str, Any] = {}

    def env(self) -> PodEnvironment:
        return PodEnvironment.from_cluster(self.cluster, OVERLAY)

    def run(self, pipeline: str, **arguments: Any) -> RunRecord:
        record = run_pipeline(self.compiled[pipeline], arguments, self.env(), self.root / "kfp", backoff_scale=0.02, task_timeout=600)
        self.summary.add_tasks([t.row() for t in record.tasks if t.exit_code is not None or t.status == FAILED])
        return record

    def loop(self, policy: str, window: tuple[str, str], **arguments: Any) -> RunRecord:
        """monitor_and_retrain on ``window`` with the Kubernetes canary against the churn InferenceService."""
        args = {"policy": policy, "current_start": window[0], "current_end": window[1], "canary": "kubernetes",
                "namespace": self.cluster.namespace, "isvc": self.state.get("isvc", ""), **arguments}
        return self.run("monitor_and_retrain", **args)

    def load(self, scenarios: str) -> None:
        """The feature-load Job of manifests/base with ``SCENARIOS`` set (what a kustomize patch of its env would do)."""
        job = run_manifest_job(FEATURE_LOAD_JOB, PodEnvironment.from_cluster(self.cluster), self.root, overrides={"SCENARIOS": scenarios})
        self.summary.add_tasks([job.row()])
        assert job.exit_code == 0, f"feature-load Job failed: {job.error} (log {job.log})"

    def settings(self) -> Any:
        """Settings of a fully wired step (the harness acting as an operator with the pipeline's credentials)."""
        from components.settings import Settings

        return Settings.from_env({**self.cluster.env(), "DRIFTLOOP_WORKDIR": str(self.root / "operator")})


def churn_rows(start: str, end: str) -> pd.DataFrame:
    """The churn scenario's rows in ``[start, end)`` (the same seed-0 data the feature-load Job loaded): what users send."""
    from components.data.scenarios import generate

    frame = generate("churn", seed=0)
    ts = frame["event_timestamp"]
    return frame[(ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))].reset_index(drop=True)


def broken_policy() -> str:
    """The churn policy with trainer parameters sklearn rejects at fit time: the training step fails, everything before it works."""
    from components.policy import policy_text

    raw = yaml.safe_load(policy_text("churn"))
    raw["trainer"] = {**raw["trainer"], "params": {"max_iter": -1}}
    return yaml.safe_dump(raw, sort_keys=False)


def create_registered_models(cluster: Any, names: tuple[str, ...]) -> None:
    """Create the registered models as the pipelines' MLflow writer (an operator step before the first run).

    Works around a registry defect on a basic-auth MLflow (3.17): reading an alias of a model
    that does not exist yet is refused with 403, not 404, so ``ModelRegistry.get`` raises
    instead of returning None and the first training run's gate step fails.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=cluster.mlflow_url, registry_uri=cluster.mlflow_url)
    for name in names:
        client.create_registered_model(name, description="created by the rehearsal's operator step")


@pytest.fixture(scope="module")
def rehearsal(cluster: Any, summary: Any) -> Iterator[Rehearsal]:
    """The cluster with its data loaded the way the manifests load it, and the churn champion served."""
    with pytest.MonkeyPatch.context() as mp:  # the harness acts as an operator with the pipelines' MLflow credentials
        mlflow = cluster.secrets["driftloop-mlflow"]
        mp.setenv("MLFLOW_TRACKING_USERNAME", mlflow["username"])
        mp.setenv("MLFLOW_TRACKING_PASSWORD", mlflow["password"])
        for key, value in cluster.env().items():  # Feast's production servers come from the process env (FeastOptions.from_env)
            if key.startswith("DRIFTLOOP_FEAST"):
                mp.setenv(key, value)
        yield _rehearsal(cluster, summary)


def _rehearsal(cluster: Any, summary: Any) -> Rehearsal:
    r = Rehearsal(cluster, summary, cluster.root / "rehearsal")
    r.load("churn")
    checked = r.run("materialize_and_check", view="churn_features", start=DRIFTED[0], end=DRIFTED[1])
    assert checked.status == SUCCEEDED, checked.failure()
    r.state["view_verdict"] = checked.outputs["Output"]
    create_registered_models(cluster, ("churn", "fraud"))
    champion = r.run("train", policy="churn", strategy="full", end=CHURN_CHAMPION_END)
    assert champion.status == SUCCEEDED, champion.failure()
    assert champion.task("register").outputs["Output"] == "champion"
    from components.registry import ModelRegistry

    r.state["champion"] = ModelRegistry(r.settings()).get("churn", "champion").version
    r.state["isvc"] = cluster.serve("churn", str(r.state["champion"]))
    return r


def test_feature_batch_checked_and_its_metrics_pushed(rehearsal: Rehearsal) -> None:
    """The materialize_and_check step pushes its view metrics to the settings' Pushgateway (it read an env name nothing set)."""
    import httpx

    assert rehearsal.state["view_verdict"] in ("passed", "warned", "blocked")
    metrics = httpx.get(f"{rehearsal.cluster.pushgateway_url.rstrip('/')}/metrics", timeout=10).text
    assert 'view="churn_features"' in metrics


def test_quiet_window(rehearsal: Rehearsal) -> None:
    with rehearsal.summary.case("quiet-window") as case:
        run = rehearsal.loop("churn", QUIET)
        assert run.status == SUCCEEDED, run.failure()
        assert run.outputs["Output"] == "none"
        assert run.task("retrain").status == SKIPPED
        assert not [t for t in run.ran() if "build-training-data" in t.task]
        case.detail = f"May 2025 decides none in {run.seconds:.0f}s; retrain branch skipped"


def test_failed_training_releases_the_claim_and_the_next_run_retrains(rehearsal: Rehearsal) -> None:
    with rehearsal.summary.case("failed-train-retries") as case:
        failed = rehearsal.loop(broken_policy(), DRIFTED, canary="none")
        assert failed.status == FAILED
        assert failed.outputs == {} or failed.outputs.get("Output") == "retrain"
        train = failed.task("train")
        assert train.status == FAILED and "max_iter" in train.error, train.error
        settle = failed.task("settle-decision")
        assert settle.status == SUCCEEDED and settle.outputs["Output"] == "released", settle.outputs
        with rehearsal.cluster.traffic("churn", rehearsal.state["isvc"], churn_rows(*DRIFTED)) as users:
            started = time.monotonic()
            run = rehearsal.loop("churn", DRIFTED)
            rehearsal.state["promote_run"], rehearsal.state["promote_users"] = run, users.sent
            rehearsal.state["promote_by_revision"] = dict(users.by_revision)
        rehearsal.state["promote_seconds"] = time.monotonic() - started
        assert run.outputs.get("Output") == "retrain", run.failure()
        assert run.task("train").exit_code == 0 and not run.task("train").cached
        assert run.task("register").outputs["Output"] == "challenger", run.failure()
        case.detail = f"train failed ({train.error[:80]}); claim released by the exit handler; the rerun retrained and registered a challenger"


def test_promote(rehearsal: Rehearsal) -> None:
    with rehearsal.summary.case("promote") as case:
        run: RunRecord = rehearsal.state["promote_run"]
        canary = run.task("canary-rollout")
        assert canary.status == SUCCEEDED and canary.outputs["Output"] == "promoted", run.failure() or canary.error
        assert run.status == SUCCEEDED
        from components.registry import ModelRegistry

        champion = ModelRegistry(rehearsal.settings()).get("churn", "champion").version
        assert champion != rehearsal.state["champion"]
        history = rehearsal.cluster.traffic_history(rehearsal.state["isvc"])
        assert 50 in history, history
        rehearsal.state["champion"], rehearsal.state["promote_history"] = champion, history
        case.detail = (f"challenger v{champion} promoted; canaryTrafficPercent history {history}; {rehearsal.state['promote_users']} requests "
                       f"({rehearsal.state['promote_by_revision']}); run {rehearsal.state['promote_seconds']:.0f}s")


def test_rerun_once(rehearsal: Rehearsal) -> None:
    with rehearsal.summary.case("rerun-once") as case:
        run = rehearsal.loop("churn", DRIFTED, canary="none")
        assert run.status == SUCCEEDED, run.failure()
        assert run.outputs["Output"] == "none"
        assert run.task("retrain").status == SKIPPED
        case.detail = "the window retrained once: its second run decides none (PostgreSQL ledger)"


def register_bad_challenger(rehearsal: Rehearsal) -> int:
    """A model trained on inverted labels, registered through the library's registry API and made challenger."""
    from components.policy import resolve_policy
    from components.registry import ModelRegistry
    from components.training.trainers import train_model
    from components.training.workflow import gate, training_set

    settings, policy = rehearsal.settings(), resolve_policy("churn")
    data = training_set(policy, "recent_window", DRIFTED[1], window="3M", settings=settings)
    data.train[policy.label] = 1 - data.train[policy.label]
    bad = train_model(policy, data.train, None)
    registry = ModelRegistry(settings)
    verdict = gate(policy, bad, data.holdout, registry)
    info = registry.register(policy, bad, data, verdict, decision_id="rehearsal-bad-challenger")
    registry.set_challenger("churn", info.version, actor="rehearsal", reason="deliberately bad (inverted labels)")
    return int(info.version)


def test_rollback(rehearsal: Rehearsal) -> None:
    with rehearsal.summary.case("rollback") as case:
        from components.registry import ModelRegistry

        bad = register_bad_challenger(rehearsal)
        isvc = rehearsal.state["isvc"]
        before = len(rehearsal.cluster.traffic_history(isvc))
        with rehearsal.cluster.traffic("churn", isvc, churn_rows("2025-09-01", "2025-10-01")):
            run = rehearsal.run("rollout", policy="churn", canary="kubernetes", namespace=rehearsal.cluster.namespace, isvc=isvc)
        assert run.outputs.get("Output") == "rolled_back", run.failure()
        spec = rehearsal.cluster.isvc(isvc)["spec"]["predictor"]
        assert spec.get("canaryTrafficPercent") == 0, spec
        assert ModelRegistry(rehearsal.settings()).get("churn", "champion").version == rehearsal.state["champion"]
        history = rehearsal.cluster.traffic_history(isvc)[before:]
        case.detail = f"bad challenger v{bad} rolled back; canaryTrafficPercent {history}; champion v{rehearsal.state['champion']} kept"


def wait_for_alerts(cluster: Any, names: tuple[str, ...], timeout: float = 60.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        alerts = cluster.alerts()
        if all(alerts.get(n) == "firing" for n in names) or time.monotonic() > deadline:
            return alerts
        time.sleep(1)


def test_alerts_fire(rehearsal: Rehearsal) -> None:
    with rehearsal.summary.case("alerts-fire") as case:
        wanted = ("DriftloopDataDrift", "DriftloopCanaryRolledBack")
        alerts = wait_for_alerts(rehearsal.cluster, wanted)
        assert all(alerts.get(n) == "firing" for n in wanted), alerts
        case.detail = f"Prometheus on manifests/ rules: {', '.join(f'{k}={v}' for k, v in sorted(alerts.items()))}"


def test_webhook(rehearsal: Rehearsal) -> None:
    with rehearsal.summary.case("webhook") as case:
        bodies = rehearsal.cluster.webhooks()
        text = [str(b) for b in bodies]
        assert any("churn" in t and "retrain" in t for t in text), bodies
        case.detail = f"{len(bodies)} webhook bodies from the decide step; first: {text[0][:120]}"


def test_overlay_overrides(rehearsal: Rehearsal) -> None:
    with rehearsal.summary.case("overlay-overrides") as case:
        steps = [int(s) for s in rehearsal.cluster.overlay(OVERLAY)["driftloop-settings"]["DRIFTLOOP_ROLLOUT_STEPS"].split(",")]
        history = rehearsal.state["promote_history"]
        canary_steps = [p for p in history if p not in (None, 0)]
        policy_steps = [10, 25]  # the churn policy's first steps, which the overlay replaces
        assert steps[0] in canary_steps and not set(policy_steps) & set(canary_steps), (steps, history)
        case.detail = f"dev overlay DRIFTLOOP_ROLLOUT_STEPS={steps}; the promote canary wrote {history} (policy: 10,25,50,100)"


def test_fraud_emergency(rehearsal: Rehearsal) -> None:
    with rehearsal.summary.case("fraud-emergency") as case:
        rehearsal.load("fraud")
        champion = rehearsal.run("train", policy="fraud", strategy="full", end=FRAUD_CHAMPION_END)
        assert champion.status == SUCCEEDED and champion.task("register").outputs["Output"] == "champion", champion.failure()
        run = rehearsal.loop("fraud", FRAUD_DRIFTED, canary="none", isvc="")
        assert run.status == SUCCEEDED, run.failure()
        assert run.outputs["Output"] == "retrain"
        decided = run.task("decide").outputs
        assert decided["strategy"] == "emergency" and decided["window"] == "48h", decided
        train = run.task("train")
        assert train.exit_code == 0, train.error
        alias = run.task("register").outputs["Output"]
        assert alias in ("challenger", ""), alias
        case.detail = (f"Keras champion, then {FRAUD_DRIFTED[0][:13]}: emergency retrain on 48h "
                       f"(train {train.seconds:.0f}s), registered {'as challenger' if alias else 'without alias (gate failed)'}")

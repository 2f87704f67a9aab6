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
FRAUD_DRIFTED = ("2025-03-09T12:00:00+00:00", "2025-03-10T18:00:00+00:00")  # 12 h before the onset (03-10T00), 18 h after


class Rehearsal:
    """Compiled pipelines, run on the cluster by the IR runner; every task row goes to the summary."""

    def __init__(self, cluster: Any, summary: Any, root: Path) -> None:
        from pipelines.compile import compile_all

        self.cluster, self.summary, self.root = cluster, summary, root
        self.compiled = {p.stem: p for p in compile_all(root / "compiled", "cluster")}  # what `driftloop compile` writes
        self.state: dict[str, Any] = {}

    def env(self) -> PodEnvironment:
        return PodEnvironment.from_cluster(self.cluster, OVERLAY)

    def run(self, pipeline: str, on_start: Any = None, **arguments: Any) -> RunRecord:
        record = run_pipeline(self.compiled[pipeline], arguments, self.env(), self.root / "kfp", backoff_scale=0.02, task_timeout=600, on_start=on_start)
        self.summary.add_tasks([t.row() for t in record.tasks if t.exit_code is not None or t.status == FAILED])
        return record

    def loop(self, policy: str, window: tuple[str, str], on_start: Any = None, **arguments: Any) -> RunRecord:
        """monitor_and_retrain on ``window`` with the Kubernetes canary against the churn InferenceService."""
        args = {"policy": policy, "current_start": window[0], "current_end": window[1], "canary": "kubernetes",
                "namespace": self.cluster.namespace, "isvc": self.state.get("isvc", ""), **arguments}
        return self.run("monitor_and_retrain", on_start=on_start, **args)

    def load(self, scenarios: str, rows: int | None = None) -> None:
        """The feature-load Job of manifests/base with ``SCENARIOS`` (and ``ROWS``) set (what a kustomize patch of its env would do)."""
        overrides = {"SCENARIOS": scenarios, **({"ROWS": str(rows)} if rows else {})}
        job = run_manifest_job(FEATURE_LOAD_JOB, PodEnvironment.from_cluster(self.cluster), self.root, overrides=overrides)
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


def rehearsal_policy(name: str, **changes: Any) -> str:
    """The shipped policy ``name`` as this cluster's platform team deploys it, as YAML text (the pipelines' ``policy`` parameter).

    Their webhook receiver lives inside the cluster network (plain http on a private address),
    which a policy must allow explicitly (``alerting.allow_private_webhook``); the URL itself
    comes from the ``driftloop-webhook`` Secret (``DRIFTLOOP_WEBHOOK_URL``). ``changes`` are
    merged over the policy's top-level keys (mappings merged one level deep).

    >>> raw = yaml.safe_load(rehearsal_policy("churn", trainer={"params": {"max_iter": -1}}))
    >>> raw["alerting"]["allow_private_webhook"], raw["trainer"]["kind"], raw["trainer"]["params"]
    (True, 'sklearn_hgb', {'max_iter': -1})
    """
    from components.policy import policy_text, resolve_policy

    raw = yaml.safe_load(policy_text(name))
    changes = {"alerting": {"allow_private_webhook": True}, **changes}
    for key, value in changes.items():
        raw[key] = {**(raw.get(key) or {}), **value} if isinstance(value, dict) else value
    text = yaml.safe_dump(raw, sort_keys=False)
    resolve_policy(text)  # validated as a submit would
    return text


CHURN = rehearsal_policy("churn")
# the training step fails (sklearn rejects the parameters at fit time); every step before it works
BROKEN_CHURN = rehearsal_policy("churn", trainer={"params": {"max_iter": -1}})
# the shipped Keras trainer (8 epochs take ~4 s on these rows; with 1-2 the model under-fits
# and the recall floor fires before the onset, a false alarm)
FRAUD = rehearsal_policy("fraud")
FRAUD_ROWS = 40_000  # 48 h hold ~5,700 rows (the emergency action needs 2,000)


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
    champion = r.run("train", policy=CHURN, strategy="full", end=CHURN_CHAMPION_END)
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
        run = rehearsal.loop(CHURN, QUIET)
        assert run.status == SUCCEEDED, run.failure()
        assert run.outputs["Output"] == "none"
        assert run.task("retrain").status == SKIPPED
        assert not [t for t in run.ran() if "build-training-data" in t.task]
        case.detail = f"May 2025 decides none in {run.seconds:.0f}s; retrain branch skipped"


def test_failed_training_releases_the_claim_and_the_next_run_retrains(rehearsal: Rehearsal) -> None:
    with rehearsal.summary.case("failed-train-retries") as case:
        failed = rehearsal.loop(BROKEN_CHURN, DRIFTED, canary="none")
        assert failed.status == FAILED
        assert failed.outputs == {} or failed.outputs.get("Output") == "retrain"
        train = failed.task("train")
        assert train.status == FAILED and "max_iter" in train.error, train.error
        settle = failed.task("settle-decision")
        assert settle.status == SUCCEEDED and settle.outputs["Output"] == "released", settle.outputs
        assert not settle.cached  # the exit handler reads and writes the ledger: never served from the cache
        rehearsal.state["drifted_model"] = str(rehearsal.state["champion"])  # the version this window's decision is about
        # users send August's rows from the moment the canary step starts (earlier, on two
        # cores, their load would only slow the monitoring and training steps)
        with rehearsal.cluster.traffic("churn", rehearsal.state["isvc"], churn_rows(*DRIFTED), start=False) as users:
            started = time.monotonic()
            run = rehearsal.loop(CHURN, DRIFTED, on_start=lambda task: users.begin() if task.endswith("canary-rollout") else None)
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
        # the same run again (a clone of its parameters, the monitored model pinned): the
        # monitors still call for a retrain, and the ledger every pod shares says it was done
        version = rehearsal.state["drifted_model"]
        run = rehearsal.loop(CHURN, DRIFTED, canary="none", model_version=version)
        assert run.status == SUCCEEDED, run.failure()
        assert "accuracy_floor" in run.task("run-monitor").outputs["Output"].split(","), run.task("run-monitor").outputs
        assert run.outputs["Output"] == "none"
        assert run.task("retrain").status == SKIPPED
        # the exit handler ran on the ledger (it was served from the cache of the first run once: same key, same status)
        settle = run.task("settle-decision")
        assert not settle.cached and settle.exit_code == 0 and settle.outputs["Output"] == "done", (settle.cached, settle.outputs)
        case.detail = f"August on v{version} again: accuracy_floor fires, the decision is none (already done in the PostgreSQL ledger)"


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
        with rehearsal.cluster.traffic("churn", isvc, churn_rows("2025-09-01T00:00:00+00:00", "2025-10-01T00:00:00+00:00")):
            run = rehearsal.run("rollout", policy=CHURN, canary="kubernetes", namespace=rehearsal.cluster.namespace, isvc=isvc)
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
        # the decide step posts each fresh retrain to the driftloop-webhook Secret's URL (the
        # policy's alerting allows a receiver inside the cluster); a repeated decision posts nothing
        bodies = rehearsal.cluster.webhooks()
        title = f"driftloop churn v{rehearsal.state['drifted_model']}: retrain (recent_window, window 3M)"
        retrains = [b for b in bodies if b.get("text") == title]
        assert retrains, bodies
        assert "accuracy_floor" in retrains[0]["blocks"][1]["text"]["text"], retrains[0]
        # the failed training released the claim, so its rerun is a fresh decision and posts again; the rerun-once run does not
        assert len(retrains) == 2, [b.get("text") for b in bodies]
        case.detail = f"{len(bodies)} posts from the decide step; {title!r} with reasons {retrains[0]['blocks'][1]['text']['text'][:100]!r}"


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
        import json

        from components.data.scenarios import get_spec

        rehearsal.load("fraud", rows=FRAUD_ROWS)
        champion = rehearsal.run("train", policy=FRAUD, strategy="full", end=FRAUD_CHAMPION_END)
        assert champion.status == SUCCEEDED and champion.task("register").outputs["Output"] == "champion", champion.failure()
        run = rehearsal.loop(FRAUD, FRAUD_DRIFTED, canary="none", isvc="")
        assert run.status == SUCCEEDED, run.failure()
        assert run.outputs["Output"] == "retrain"
        monitor = run.task("run-monitor")
        assert "error_stream" in monitor.outputs["Output"].split(","), monitor.outputs["Output"]
        report = json.loads(Path(monitor.outputs["report"].uri).read_text())
        (stream,) = next(m for m in report["monitors"] if m["name"] == "error_stream")["results"]
        detected = pd.Timestamp(stream["details"]["detected_timestamp"])
        onset = get_spec("fraud").onset
        # the window opens 12 h before the onset: the detector stays quiet there and fires within hours after it
        assert onset <= detected <= onset + pd.Timedelta(hours=12), (detected, onset)
        decided = run.task("decide").outputs
        assert decided["strategy"] == "emergency" and decided["window"] == "48h", decided
        span = run.task("build-training-data").outputs["Output"]
        train = run.task("train")
        assert train.exit_code == 0 and not train.cached, train.error
        alias = run.task("register").outputs["Output"]
        assert alias in ("challenger", ""), alias
        case.detail = (f"Keras champion (data before {FRAUD_CHAMPION_END[:10]}); {FRAUD_DRIFTED[0][:13]}..{FRAUD_DRIFTED[1][:13]}: error stream fired at "
                       f"{detected:%m-%d %H:%M} (onset {onset:%m-%d %H:%M}); emergency retrain on 48h ({span}, train {train.seconds:.0f}s), "
                       f"registered {'as challenger' if alias else 'without alias (gate failed)'}")

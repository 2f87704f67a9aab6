"""``driftloop serve`` and ``driftloop rollout`` from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from serving_fixtures import MODEL, NUMERIC, REPO_ROOT, free_port, policy_dict, wait_ready

pytestmark = pytest.mark.integration


def _env(store, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DRIFTLOOP_WORKDIR": str(tmp_path / "work"), "DRIFTLOOP_MLFLOW_TRACKING_URI": store.tracking_uri,
            "PYTHONPATH": str(REPO_ROOT)}


def _policy(tmp_path: Path, **rollout: object) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy_dict(**rollout)))
    return path


def test_serve_serves_the_alias(store, registry, tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "driftloop.cli", "serve", "--policy", str(_policy(tmp_path)), "--port", str(port)]
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - child output; closed in finally
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=_env(store, tmp_path), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc, log=tmp_path / "serve.log")
        inst = dict.fromkeys(NUMERIC, 0.5) | {"segment": "a"}
        r = httpx.post(f"http://127.0.0.1:{port}/v1/models/{MODEL}:predict", json={"instances": [inst]})
        assert r.status_code == 200 and r.headers["x-model-version"] == store.versions["good1"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert f"serving {MODEL} version {store.versions['good1']}" in (tmp_path / "serve.log").read_text()


def _in_process(monkeypatch: pytest.MonkeyPatch, store, tmp_path: Path) -> None:
    """The CLI's environment for an in-process ``driftloop.cli.main`` call (what ``python -m driftloop.cli`` runs).

    ``test_serve_serves_the_alias`` starts the real ``python -m driftloop.cli`` process; the
    rollout tests call the same ``main`` here and spare an interpreter start each.
    """
    for key, value in _env(store, tmp_path).items():
        if key.startswith("DRIFTLOOP_") or key == "PYTHONPATH":
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(REPO_ROOT)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--challenger", f"models:/{MODEL}/99"], "does not resolve"),
        ([], "does not resolve"),  # no challenger alias is set
    ],
)
def test_rollout_errors_are_one_line_exit_2(store, registry, tmp_path: Path, args: list[str], needle: str, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from driftloop.cli import main

    _in_process(monkeypatch, store, tmp_path)
    code = main(["rollout", "--policy", str(_policy(tmp_path, checks=[{"metric": "error_rate", "max": 0.01}])), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.e2e
def test_rollout_cli_promotes_with_replayed_traffic(store, registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from serving_fixtures import make_data

    from driftloop.cli import main

    data = tmp_path / "live.parquet"
    make_data(3000, 21).to_parquet(data)
    _in_process(monkeypatch, store, tmp_path)
    code = main(["rollout", "--policy", str(_policy(tmp_path)), "--challenger", f"models:/{MODEL}/{store.versions['good2']}",
                 "--replay", str(data), "--interval", "2", "--out", str(tmp_path / "result.json"), "--report", str(tmp_path / "steps.html")])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    lines = out.out.splitlines()
    assert any(line.startswith("step 1/2 at 50%: advance") for line in lines), out.out
    assert any(line.startswith("promoted: ") for line in lines) and (tmp_path / "steps.html").exists()
    assert " 0 failed" in out.out
    assert str(registry.get(MODEL, "champion").version) == store.versions["good2"]

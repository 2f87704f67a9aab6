"""``driftloop serve``: serve a registered model version with KServe's ModelServer."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--policy", "policy_path", required=True, help="Policy YAML file, or a seed policy name (churn, credit, ...).")
@click.option("--alias", default="champion", show_default=True, help="Registry alias to serve.")
@click.option("--version", "version", default=None, help="Serve this registry version instead of an alias.")
@click.option("--port", default=8080, show_default=True, type=int, help="HTTP port (v1 and v2 REST, /metrics).")
@click.option("--log-dir", default=None, type=click.Path(path_type=Path), help="Prediction log directory (default: <workdir>/predictions).")
def serve(policy_path: str, alias: str, version: str | None, port: int, log_dir: Path | None) -> None:
    """Serve models:/<model>@<alias> until interrupted."""
    from components.policy import load_policy
    from components.settings import Settings
    from serving.model_loading import resolve_version
    from serving.predictor import main

    policy = load_policy(policy_path)
    settings = Settings.from_env()
    uri = f"models:/{policy.model}/{version}" if version else f"models:/{policy.model}@{alias}"
    resolved = resolve_version(uri, settings.mlflow_tracking_uri)  # one-line error before the server starts
    log_dir = log_dir or settings.workdir / "predictions"
    click.echo(f"serving {policy.model} version {resolved} ({uri}) on http://127.0.0.1:{port}/v1/models/{policy.model}:predict; log: {log_dir}")
    main(["--model-name", policy.model, "--model-uri", f"models:/{policy.model}/{resolved}", "--http-port", str(port),
          "--log-dir", str(log_dir), "--tracking-uri", settings.mlflow_tracking_uri, "--policy", policy_path])

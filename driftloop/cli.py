"""The ``driftloop`` command line.

Sub-commands live in ``driftloop/commands/<name>.py`` and are imported only when called,
so ``driftloop --help`` starts fast without TensorFlow, MLflow or KFP. A
:class:`~components.errors.DriftloopError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from components.errors import DriftloopError

# command name -> (module under driftloop.commands, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "scenario": ("scenario", "scenario", "Generate a seed scenario's data as parquet."),
    "features": ("features", "features", "Apply, materialize and query the Feast feature repo."),
    "monitor": ("monitor", "monitor", "Run a policy's monitors on reference and current data; print the decision."),
    "train": ("train", "train", "Build a training set, train, evaluate against the champion, register."),
    "registry": ("registry", "registry", "List model versions, promote or roll back aliases."),
    "serve": ("serve", "serve", "Serve a registered model with KServe's ModelServer."),
    "rollout": ("rollout", "rollout", "Roll the challenger out by canary steps; promote or roll back."),
    "compile": ("pipelines", "compile_cmd", "Compile every pipeline to KFP IR YAML."),
    "submit": ("pipelines", "submit", "Upload a pipeline version and start a run on Kubeflow Pipelines."),
    "schedule": ("pipelines", "schedule", "Create a recurring run on Kubeflow Pipelines from the policy's cron."),
    "run-local": ("pipelines", "run_local", "Run a whole pipeline on this machine with kfp.local."),
    "demo": ("demo", "demo", "Run the whole loop on one machine and write a dashboard."),
}


class LazyGroup(click.Group):
    """A click group that imports a sub-command's module only when it runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attr, short_help = COMMANDS[name]
        try:
            module = importlib.import_module(f"driftloop.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"driftloop.commands.{module_name}":
                raise

            @click.command(name=name, help=f"{short_help} (not available in this build)")
            def missing() -> None:
                raise DriftloopError(f"'driftloop {name}' is not available in this build", fix="update driftloop")

            return missing
        command: click.Command = getattr(module, attr)
        command.short_help = short_help
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="driftloop")
def cli() -> None:
    """driftloop keeps a deployed model honest: monitor, decide, retrain, roll out."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line and exit code 2."""
    try:
        # a command's own exit code (e.g. `features check` exits 1 on a failed check) is kept
        code = cli.main(args=argv, standalone_mode=False)
    except DriftloopError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())

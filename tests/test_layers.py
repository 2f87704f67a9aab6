"""The import layers hold: the library never imports the application or kfp.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``); this test runs them,
so an upward import fails ``make test`` with the offending line. The pyarrow guard that
the library applies on import is checked for each top package imported first, in a fresh
interpreter each.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.unit
def test_import_contracts_hold() -> None:
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True) == 0, "an import breaks a layer: run .venv/bin/lint-imports"


@pytest.mark.unit
def test_contracts_name_every_layer() -> None:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")
    assert layers["layers"] == ["driftloop", "pipelines", "serving", "components"]
    protected = {tuple(c["protected_modules"]): set(c["allowed_importers"]) for c in config["contracts"] if c["type"] == "protected"}
    assert protected[("kfp",)] == {"components.kfp", "pipelines", "driftloop"}
    assert protected[("components.kfp",)] == {"pipelines", "driftloop"}


@pytest.mark.unit
@pytest.mark.parametrize("module", ["components.policy", "serving.prediction_log", "pipelines", "driftloop.cli"])
def test_importing_any_top_package_makes_pyarrow_single_threaded(module: str) -> None:
    code = f"import {module}, pyarrow; print(pyarrow.cpu_count(), pyarrow.io_thread_count())"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["1", "1"]

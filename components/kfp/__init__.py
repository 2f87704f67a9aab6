"""Thin KFP component wrappers over the library: the only library package that imports ``kfp``.

Every step is a lightweight Python component on the project image with
``install_kfp_package=False``: the image already holds kfp and driftloop, so
``kfp.local.SubprocessRunner(use_venv=False)`` runs the same IR here that a cluster runs
in a pod. Component bodies are serialised by source, so each one imports what it needs
inside itself and delegates to :mod:`components.kfp.runtime` and the library.

>>> IMAGE.startswith("ghcr.io/driftloop/driftloop:") or "DRIFTLOOP_IMAGE" in os.environ
True
"""

import os
from collections.abc import Callable
from typing import Any

from components import __version__

DEFAULT_IMAGE = f"ghcr.io/driftloop/driftloop:{__version__}"
# The one place the image is named; the Dockerfile builds it, DRIFTLOOP_IMAGE overrides it.
IMAGE = os.environ.get("DRIFTLOOP_IMAGE") or DEFAULT_IMAGE


def component(func: Callable[..., Any]) -> Any:
    """Make ``func`` a lightweight KFP component on :data:`IMAGE` without installing kfp.

    >>> from kfp import dsl
    >>> @component
    ... def add(a: int, b: int) -> int:
    ...     return a + b
    >>> add.component_spec.implementation.container.image == IMAGE
    True
    """
    from kfp import dsl

    return dsl.component(base_image=IMAGE, install_kfp_package=False)(func)

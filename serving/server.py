"""What every KServe server process here shares: the ``kserve.Model`` base, quiet request logs, one BLAS thread.

>>> one_blas_thread(env={})
{'OMP_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

try:  # kserve is a hard dependency of serving; importing it here keeps the servers real kserve.Models.
    from kserve import Model as KServeModel
except ImportError:  # pragma: no cover
    KServeModel = object  # type: ignore[assignment,misc]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Ask for one OpenMP/BLAS thread per server unless the environment says otherwise.

    Requests are small and concurrent, and OpenMP barriers across oversubscribed cores
    made p95 latency 10-100x the median here. The variables must be set before
    scikit-learn loads libgomp (threadpoolctl only limits libraries already loaded).
    """
    env = os.environ if env is None else env
    for var in THREAD_VARIABLES:
        env.setdefault(var, "1")
    return env


def quiet_request_logs(access_log: bool = False) -> None:
    """Drop KServe's per-request trace lines and FastAPI's per-request deprecation warning:
    writing them costs more than a small model's prediction."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*ORJSONResponse is deprecated.*")
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    if not access_log:
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)

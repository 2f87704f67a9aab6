"""pyarrow's thread pools, one thread each, set once when the library is imported.

pyarrow 18 (the newest feast 0.47 allows) aborted at interpreter exit in 6 of 40 runs of
a plain ``pd.read_parquet`` here under load ("terminate called without an active
exception"), failing CLI commands and kfp.local tasks after their work was done; with one
thread per pool: 0 of 40. Our frames are small, so the parallel reader buys little.

The call lives in ``components/__init__.py`` (and ``serving`` / ``pipelines`` import
``components`` first), so every process that touches the library gets it, whichever
module it imports first; ``tests/test_layers.py`` checks that for each top package.

>>> single_threaded_arrow()
>>> import pyarrow
>>> pyarrow.cpu_count(), pyarrow.io_thread_count()
(1, 1)
"""

from __future__ import annotations


def single_threaded_arrow() -> None:
    """Give pyarrow's CPU and IO thread pools one thread each (no-op without pyarrow)."""
    try:
        import pyarrow
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return
    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(1)

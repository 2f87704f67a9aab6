"""driftloop: keeps a deployed model honest."""

__version__ = "0.1.0"


def _single_threaded_arrow() -> None:
    """Give pyarrow's CPU and IO thread pools one thread each.

    pyarrow 18 (the newest feast 0.47 allows) aborted at interpreter exit in 6 of 40 runs
    of a plain ``pd.read_parquet`` here under load ("terminate called without an active
    exception"), failing CLI commands and kfp.local tasks after their work was done; with
    one thread per pool: 0 of 40. Our frames are small, so the parallel reader buys little.
    """
    try:
        import pyarrow
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return
    pyarrow.set_cpu_count(1)
    pyarrow.set_io_thread_count(1)


_single_threaded_arrow()

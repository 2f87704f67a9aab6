"""Serving: the KServe predictor and transformer, prediction log, metrics, router and canary controller."""

import components  # noqa: F401  (the library's process-wide guards: single-threaded pyarrow)

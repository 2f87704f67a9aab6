"""Serving: the KServe predictor and transformer, prediction log, metrics, router and canary controller."""

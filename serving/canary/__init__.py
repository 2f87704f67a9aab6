"""Canary rollout: a pure analysis step, a controller loop and traffic backends (local, Kubernetes)."""

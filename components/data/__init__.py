"""Seed-scenario data generators with a known drift type and onset.

Use :func:`components.data.scenarios.generate` and :data:`components.data.scenarios.SCENARIOS`.
"""

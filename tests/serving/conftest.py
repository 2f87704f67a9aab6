"""Fixtures of the serving tests, defined in serving_fixtures.py (a uniquely named module the
test files import helpers from: several conftest.py files would clash as "conftest")."""

from serving_fixtures import registry, start_predictor, store  # noqa: F401

"""Fixtures of the serving tests, defined in serving_fixtures.py (a uniquely named module the
test files import helpers from: several conftest.py files would clash as "conftest")."""

import contextlib

import pytest
from serving_fixtures import MODEL, registry, start_predictor, store  # noqa: F401


@pytest.fixture(autouse=True)
def _shared_registry_starts_with_good1_as_champion(request: pytest.FixtureRequest) -> None:
    """The session's ``store`` is shared by every serving test file on a worker, and a rollout that
    promotes moves its aliases: each test that uses it starts from champion = good1, no challenger,
    whatever ran before it (file order differs under xdist)."""
    if "store" not in request.fixturenames:
        return
    from mlflow import MlflowClient

    shared = request.getfixturevalue("store")
    client = MlflowClient(shared.tracking_uri)
    client.set_registered_model_alias(MODEL, "champion", shared.versions["good1"])
    with contextlib.suppress(Exception):  # no challenger alias is the usual case
        client.delete_registered_model_alias(MODEL, "challenger")

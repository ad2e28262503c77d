"""Serve fixtures: an in-process app over the session's trained digits model."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from starlette.testclient import TestClient
from tests.conftest import FAST

from modelyard.config import compose_config
from modelyard.data import load_dataset
from modelyard.serve.app import create_app
from modelyard.serve.settings import settings_from


@pytest.fixture
def make_client(trained, use_session_home):  # type: ignore[no-untyped-def]
    """Factory: a TestClient (lifespan run) for the model with extra settings."""
    clients: list[TestClient] = []

    def make(*overrides: str, model: str = "digits-cnn@candidate") -> TestClient:
        settings = settings_from([*overrides], model=model, poll_interval_s=0)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:  # type: ignore[no-untyped-def]
    return make_client()  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def digits_test_images(session_home) -> Iterator[np.ndarray]:  # type: ignore[no-untyped-def]
    yield load_dataset(compose_config(FAST).data).test.images[:16]

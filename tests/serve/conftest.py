"""Serve fixtures: an in-process app over the session's trained digits model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient
from tests.conftest import FAST
from tests.helpers import postgres_database

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


@dataclass(frozen=True)
class Versions:
    """digits-cnn in a home of its own: v1 (production), v2 the same model made
    slow (staging), v3 a graph that cannot load (broken), v4 a plain copy of v1
    (challenger)."""

    home: Path
    bundle: Path
    experiment_id: str


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Versions]:
    from tests.serve.versions import (
        broken_copy,
        copy_bundle,
        register_copy,
        set_alias,
        slower_copy,
    )

    from modelyard import tracking
    from modelyard.train.run import train

    folder = tmp_path_factory.mktemp("traffic-home")
    previous = os.environ.get("MODELYARD_HOME")
    os.environ["MODELYARD_HOME"] = str(folder)
    tracking.configure()
    try:
        first = train(compose_config(FAST))
        work = tmp_path_factory.mktemp("bundles")
        slow = register_copy(
            slower_copy(first.bundle_path, work / "slow" / "bundle"), first.experiment_id
        )
        broken = register_copy(
            broken_copy(first.bundle_path, work / "broken" / "bundle"), first.experiment_id
        )
        same = register_copy(
            copy_bundle(first.bundle_path, work / "same" / "bundle"), first.experiment_id
        )
        assert (first.model_version, slow, broken, same) == ("1", "2", "3", "4")
        set_alias("production", "1")
        set_alias("staging", "2")
        set_alias("broken", "3")
        set_alias("challenger", "4")
        yield Versions(folder, first.bundle_path, first.experiment_id)
    finally:
        if previous is None:
            os.environ.pop("MODELYARD_HOME", None)
        else:
            os.environ["MODELYARD_HOME"] = previous
        tracking.configure()


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The prediction log a server process writes: embedded SQLite, then the local
    PostgreSQL (a database of its own, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
        return
    with postgres_database() as url:
        yield url

"""Monitor fixtures: prediction log databases (SQLite file, real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from tests.conftest import FAST
from tests.helpers import postgres_database

from modelyard import bundle as bundle_io
from modelyard.bundle import Bundle
from modelyard.config import compose_config
from modelyard.data import load_dataset
from modelyard.monitor.drift import WindowData
from modelyard.monitor.logstore import create_log_engine, metadata
from modelyard.monitor.observe import observe_images
from modelyard.monitor.predlog import PredictionLogger
from modelyard.predictor import Predictor


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """One uniquely named PostgreSQL database for this test run, dropped at the end."""
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty prediction log, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    url: str = request.getfixturevalue("pg_url")
    engine = create_log_engine(url)
    metadata.drop_all(engine)  # each test starts from an empty table
    engine.dispose()
    return url


def count_rows(url: str) -> int:
    engine = create_log_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one())
    finally:
        engine.dispose()


@dataclass(frozen=True)
class HeldOut:
    bundle: Bundle
    images: np.ndarray
    labels: np.ndarray

    def observe(self, images: np.ndarray) -> WindowData:
        prediction = Predictor(self.bundle).predict_images(images)
        return observe_images(
            self.bundle.reference_profile,
            self.bundle.labels,
            images,
            prediction.probabilities,
            prediction.embedding,
        )


def take(data: WindowData, rows: np.ndarray) -> WindowData:
    return WindowData(
        {name: values[rows] for name, values in data.summaries.items()},
        data.projection[rows],
        [data.labels[i] for i in rows],
        data.confidences[rows],
    )


@pytest.fixture(scope="session")
def held_out(trained, session_home) -> HeldOut:  # type: ignore[no-untyped-def]
    """The validation and test images: never trained on (the profile is training data)."""
    dataset = load_dataset(compose_config(FAST).data)
    return HeldOut(
        bundle_io.read_bundle(trained.bundle_path),
        np.concatenate([dataset.val.images, dataset.test.images]),
        np.concatenate([dataset.val.labels, dataset.test.labels]),
    )


def log_window(url: str, model: str, version: str, data: WindowData) -> None:
    """Write a window of observations into the prediction log at ``url``."""
    log = PredictionLogger(url)
    log.start()
    log.record(
        model,
        version,
        [f"r{i}" for i in range(len(data))],
        data.summaries,
        data.projection,
        data.labels,
        data.confidences,
        0.002,
    )
    log.close()

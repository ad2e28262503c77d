"""Monitor fixtures: prediction log databases (SQLite file, real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.helpers import postgres_database

from modelyard.monitor.logstore import create_log_engine, metadata


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

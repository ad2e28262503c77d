"""A throwaway PostgreSQL database on the local server, for tests that share state
between processes the way workers on several machines would."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

SERVER = os.environ.get("MODELYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def _execute(statement: str) -> None:
    import psycopg

    # autocommit: CREATE/DROP DATABASE refuse to run inside a transaction.
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(statement)


@contextmanager
def temporary_database(prefix: str = "modelyard_test") -> Iterator[str]:
    """CREATE a uniquely named database, yield its URL, DROP it afterwards.

    Fails (never skips) when the server is down: CI starts it in ``.ci/run``.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        _execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

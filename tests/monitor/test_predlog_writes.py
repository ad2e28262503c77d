"""How the log's writes reach SQLite: a few multi-row INSERTs per write, not one
statement run per row (the driver lets the GIL go around each run, and beside a
busy event loop every taking back waited)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tests.helpers import record_log_rows

from modelyard.monitor.logstore import create_log_engine, read_window
from modelyard.monitor.predlog import PredictionLogger


def _traced_log(url: str, parameter_limit: int | None = None) -> tuple[PredictionLogger, list[str]]:
    """A started log on ``url`` and the statements SQLite runs for it (its trace
    callback: called each time a statement starts running, per row for executemany);
    with ``parameter_limit``, a SQLite that binds at most that many parameters."""
    log = PredictionLogger(url, flush_interval_s=3600)
    runs: list[str] = []

    @sa.event.listens_for(log.engine, "connect")
    def _trace(connection: Any, record: Any) -> None:
        if parameter_limit is not None:
            connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, parameter_limit)
        connection.set_trace_callback(runs.append)

    log.start()
    return log, runs


def test_a_write_of_hundreds_of_rows_runs_a_few_statements_in_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log, runs = _traced_log(url)
    record_log_rows(log, 700)  # image rows: 12 columns
    record_log_rows(log, 301, first=700, top=True)  # rows with top labels: 13
    assert log.flush(10)
    log.close()
    inserts = [sql for sql in runs if sql.lstrip().upper().startswith("INSERT")]
    # 700 = 256 + 256 + 128 + 32 + 16 + 8 + 4, 301 = 256 + 32 + 8 + 4 + 1
    assert len(inserts) == 12
    engine = create_log_engine(url)
    window = read_window(engine, "m")
    engine.dispose()
    assert window.request_ids == [f"req-{i}" for i in range(1001)]
    assert log.written == 1001


def test_a_sqlite_allowing_fewer_parameters_gets_smaller_inserts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log, runs = _traced_log(url, parameter_limit=999)  # as before SQLite 3.32
    record_log_rows(log, 700)  # 12 columns: 83 rows fit in 999 parameters, so 64 a statement
    assert log.flush(10)
    log.close()
    inserts = [sql for sql in runs if sql.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 14  # 10 x 64 + 32 + 16 + 8 + 4
    assert (log.written, log.dropped) == (700, 0)

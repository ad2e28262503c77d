"""The SQLite log's WAL checkpoints run on a thread of their own, not in the log
thread's commits: a checkpoint's fsync once held a write (and the answers arriving
meanwhile) for 0.1-0.7 s."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from tests.helpers import record_log_rows
from tests.monitor.conftest import count_rows

from modelyard.monitor import predlog
from modelyard.monitor.logstore import create_log_engine
from modelyard.monitor.predlog import CHECKPOINT_THREAD_NAME, THREAD_NAME, PredictionLogger


def _autocheckpoint(url: str, engine_of: PredictionLogger | None = None) -> int:
    engine = engine_of.engine if engine_of is not None else create_log_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())
    finally:
        if engine_of is None:
            engine.dispose()


def test_the_logs_own_commits_never_checkpoint_other_engines_still_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLogger(url)
    assert _autocheckpoint(url, log) == 0
    log.engine.dispose()
    # readers, feedback and the CLI keep SQLite's default (checkpoint at 1,000 pages)
    assert _autocheckpoint(url) == 1000


def test_a_stalled_checkpoint_stalls_no_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    callers: list[str] = []

    def stuck_checkpoint(engine: object) -> None:  # as an fsync that takes its time
        callers.append(threading.current_thread().name)
        entered.set()
        release.wait(30)

    monkeypatch.setattr(predlog, "checkpoint", stuck_checkpoint)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLogger(url, flush_interval_s=0.05, capacity=100)
    log.start()
    try:
        assert record_log_rows(log, 60) == 60
        assert log.flush(10)
        assert entered.wait(10)  # the first write woke the checkpointer; it hangs there
        for _ in range(3):  # 180 rows through a 100-row buffer while it hangs
            assert record_log_rows(log, 60) == 60
            assert log.flush(10)
        assert (log.written, log.dropped) == (240, 0)
        assert callers == [CHECKPOINT_THREAD_NAME]
    finally:
        release.set()
        log.close()
    assert THREAD_NAME not in callers and count_rows(url) == 240


def test_the_log_checkpoints_its_wal_well_before_a_thousand_pages(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    log = PredictionLogger(f"sqlite:///{db}", flush_interval_s=0.05)
    log.start()
    # Another process's connection keeps the database open: closing the log's own
    # connections would otherwise checkpoint it as SQLite closes the last one.
    reader = sqlite3.connect(db)
    try:
        reader.execute("PRAGMA journal_mode=WAL").fetchall()
        before = db.stat().st_size
        record_log_rows(log, 20)  # a few pages of WAL
        assert log.flush(10)
        deadline = time.monotonic() + 10
        while db.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.02)
        # checkpointed: the table's pages reached the database file itself
        assert db.stat().st_size > before
    finally:
        log.close()
        reader.close()

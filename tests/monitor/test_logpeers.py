"""The prediction logs of sibling server processes (``--workers N``) asked to write
now: ``flush_then`` on one log, and :class:`LogPeers` between several, on SQLite and
PostgreSQL. Each "process" here is a logger with its own socket in one folder."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import free_port
from tests.monitor.conftest import count_rows
from tests.monitor.test_predlog import _record

from modelyard.monitor import predlog
from modelyard.monitor.logpeers import LogPeers
from modelyard.monitor.logstore import write_rows
from modelyard.monitor.predlog import PredictionLogger

NEVER = 3600.0
"""A flush interval far longer than any test: only an asked-for write writes."""


Flush = Callable[[LogPeers, float], bool]


@pytest.fixture(params=["asyncio", "uvloop"])
def flush(request: pytest.FixtureRequest) -> Flush:
    """``LogPeers.flush`` run to its end on asyncio's loop, and on uvloop (uvicorn's)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        factory = uvloop.new_event_loop

    def run(peers: LogPeers, timeout_s: float) -> bool:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(peers.flush(timeout_s))

    return run


@pytest.fixture
def folder() -> Iterator[Path]:
    # Short: a Unix socket's path has at most 107 bytes, pytest's tmp_path can be long.
    with tempfile.TemporaryDirectory(prefix="peers-") as name:
        yield Path(name)


def _answers(log: PredictionLogger) -> tuple[threading.Event, list[bool]]:
    done = threading.Event()
    answers: list[bool] = []

    def answer(written: bool) -> None:
        answers.append(written)
        done.set()

    log.flush_then(answer)
    return done, answers


def test_flush_then_writes_everything_logged_and_then_answers(log_url: str) -> None:
    log = PredictionLogger(log_url, flush_interval_s=NEVER)
    log.start()
    try:
        _record(log, 7)
        done, answers = _answers(log)
        assert done.wait(10), "no answer: the asked-for write did not happen"
        assert answers == [True]
        assert count_rows(log_url) == 7  # written before the answer, not after
    finally:
        log.close()
    done, answers = _answers(log)  # a stopped log answers at once: it writes no more
    assert done.is_set() and answers == [False]


def test_flush_then_says_when_the_write_failed() -> None:
    log = PredictionLogger(
        f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
        flush_interval_s=NEVER,
        close_timeout_s=0.2,
    )
    log.start()
    try:
        _record(log, 3)
        done, answers = _answers(log)
        assert done.wait(10)
        assert answers == [False]
    finally:
        log.close()


def test_flush_then_retries_a_write_that_failed_for_a_moment(
    log_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers asked at once on one SQLite file lock each other out for a moment
    ("database is locked", seen in the full suite): the write someone waits on is
    tried again, so the asker gets True rather than holding its label for the window."""
    failures = [sqlite3.OperationalError("database is locked")]

    def locked_once(engine: Any, rows: list[Any]) -> None:
        if failures:
            raise failures.pop()
        write_rows(engine, rows)

    monkeypatch.setattr(predlog, "write_rows", locked_once)
    log = PredictionLogger(log_url, flush_interval_s=NEVER)
    log.start()
    try:
        _record(log, 4)
        started = time.monotonic()
        done, answers = _answers(log)
        assert done.wait(10)
        assert answers == [True]
        assert not failures  # it did fail once
        assert time.monotonic() - started < 2  # a retry's pause, not a flush interval
        assert count_rows(log_url) == 4
    finally:
        log.close()


def test_siblings_write_what_they_logged_when_asked(
    log_url: str, folder: Path, flush: Flush
) -> None:
    logs = [PredictionLogger(log_url, flush_interval_s=NEVER) for _ in range(3)]
    peers = [LogPeers(folder, log, name=str(n)) for n, log in enumerate(logs)]
    for log in logs:
        log.start()
    try:
        assert [p.name for p in peers[0].siblings()] == ["w-1", "w-2"]
        _record(logs[1], 4)
        _record(logs[2], 5)
        assert logs[1].written == logs[2].written == 0
        started = time.monotonic()
        assert flush(peers[0], 10)
        assert time.monotonic() - started < 5  # a write's time, not a flush interval's
        assert count_rows(log_url) == 9
        assert logs[0].written == 0  # the asker's own log was not asked
    finally:
        for p in peers:
            p.close()
        for log in logs:
            log.close()
    assert list(folder.iterdir()) == []  # every socket removed, the askers' too


def test_a_sibling_that_cannot_write_or_does_not_answer_is_not_confirmed(
    folder: Path, tmp_path: Path, flush: Flush
) -> None:
    asker = PredictionLogger(f"sqlite:///{tmp_path / 'log.db'}", flush_interval_s=NEVER)
    down = PredictionLogger(
        f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
        flush_interval_s=NEVER,
        close_timeout_s=0.2,
    )
    mine, failing = LogPeers(folder, asker, name="a"), LogPeers(folder, down, name="b")
    down.start()
    try:
        _record(down, 2)
        assert not flush(mine, 10)  # its database is down
        failing.close()
        # a process that is alive but does not answer (stuck): the ask times out
        stuck = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        stuck.bind(str(folder / "w-stuck"))
        try:
            started = time.monotonic()
            assert not flush(mine, 0.3)
            assert 0.25 < time.monotonic() - started < 3
        finally:
            stuck.close()
    finally:
        mine.close()
        failing.close()
        down.close()


def test_a_sibling_that_exited_is_not_waited_for(
    folder: Path, tmp_path: Path, flush: Flush
) -> None:
    log = PredictionLogger(f"sqlite:///{tmp_path / 'log.db'}", flush_interval_s=NEVER)
    mine = LogPeers(folder, log, name="a")
    gone = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    gone.bind(str(folder / "w-gone"))
    gone.close()  # its file stays, as after a SIGKILL
    try:
        started = time.monotonic()
        assert flush(mine, 10)
        assert time.monotonic() - started < 1
        assert not (folder / "w-gone").exists()
    finally:
        mine.close()

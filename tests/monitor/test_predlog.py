"""The prediction logger against SQLite and a real PostgreSQL: batching, flush on
close, a bounded buffer, and a database that is down."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import numpy as np
import pytest
from tests.helpers import POSTGRES_ADMIN_URL, free_port, logged_rows
from tests.monitor.conftest import count_rows

from modelyard.monitor import predlog
from modelyard.monitor.logstore import create_log_engine, read_window
from modelyard.monitor.predlog import CHECKPOINT_THREAD_NAME, THREAD_NAME, PredictionLogger


def _record(
    log: PredictionLogger, rows: int, model: str = "m", version: str = "1", role: str = "main"
) -> int:
    rng = np.random.default_rng(rows)
    return log.record(
        model,
        version,
        [f"req-{i}" for i in range(rows)],
        {"mean_intensity": rng.random(rows), "ink_fraction": rng.random(rows)},
        rng.normal(size=(rows, 4)),
        [str(i % 3) for i in range(rows)],
        rng.random(rows),
        0.004,
        role=role,
    )


def test_records_round_trip(log_url: str) -> None:
    log = PredictionLogger(log_url, flush_interval_s=0.05)
    log.start()
    assert _record(log, 5) == 5
    assert log.flush(10)
    assert _record(log, 3, version="2") == 3
    log.close()
    assert (log.written, log.dropped) == (8, 0)
    engine = create_log_engine(log_url)
    window = read_window(engine, "m")
    assert len(window) == 8
    assert window.versions == ["1"] * 5 + ["2"] * 3
    assert window.labels[:5] == ["0", "1", "2", "0", "1"]
    assert window.projection.shape == (8, 4)
    assert sorted(window.summaries) == ["ink_fraction", "mean_intensity"]
    assert np.allclose(window.latencies, 0.004)
    rng = np.random.default_rng(5)
    assert np.allclose(window.summaries["mean_intensity"][:5], rng.random(5))
    assert len(read_window(engine, "m", version="2")) == 3
    assert len(read_window(engine, "m", last=2)) == 2
    assert len(read_window(engine, "m", since=time.time() + 60)) == 0
    assert len(read_window(engine, "other")) == 0
    engine.dispose()


def test_close_writes_everything_still_buffered(log_url: str) -> None:
    # A flush interval far longer than the test: only close() can write these.
    log = PredictionLogger(log_url, flush_interval_s=3600)
    log.start()
    for _ in range(20):
        _record(log, 7)
    assert log.buffered == 140
    log.close()
    assert count_rows(log_url) == 140 and log.dropped == 0


def test_full_buffer_drops_new_records_and_counts_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dropped: list[int] = []
    log = PredictionLogger(
        f"sqlite:///{tmp_path / 'log.db'}",
        flush_interval_s=3600,
        capacity=10,
        on_dropped=dropped.append,
    )
    log.start()
    assert _record(log, 6) == 6
    assert _record(log, 6) == 0  # would exceed 10
    assert _record(log, 4) == 4
    log.close()
    assert dropped == [6] and log.dropped == 6
    assert count_rows(f"sqlite:///{tmp_path / 'log.db'}") == 10


def test_a_full_buffer_drops_shadow_rows_before_main_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dropped: list[int] = []
    shadow_dropped: list[int] = []
    log = PredictionLogger(
        f"sqlite:///{tmp_path / 'log.db'}",
        flush_interval_s=3600,
        capacity=20,
        on_dropped=dropped.append,
        on_shadow_dropped=shadow_dropped.append,
    )
    assert (log.limit("main"), log.limit("canary"), log.limit("shadow")) == (20, 20, 15)
    log.start()
    assert _record(log, 10) == 10
    assert _record(log, 4, version="2", role="shadow") == 4  # 14 of the shadow's 15
    assert _record(log, 2, version="2", role="shadow") == 0  # beyond its share: dropped
    assert _record(log, 6) == 6  # the main rows still fit: 20
    assert _record(log, 1) == 0  # the buffer is full for everyone
    log.close()
    assert dropped == [2, 1] and shadow_dropped == [2] and log.dropped == 3
    assert count_rows(f"sqlite:///{tmp_path / 'log.db'}") == 20


def test_a_database_that_is_down_never_blocks_or_fails_requests() -> None:
    # Nothing listens on this port: every write attempt fails.
    dropped: list[int] = []
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    log = PredictionLogger(
        url, flush_interval_s=0.05, capacity=100, close_timeout_s=0.5, on_dropped=dropped.append
    )
    log.start()
    started = time.perf_counter()
    accepted = sum(_record(log, 10) for _ in range(30))
    elapsed = time.perf_counter() - started
    assert accepted == 100  # the buffer holds 100; the rest is dropped, not queued forever
    assert elapsed < 1.0, f"30 record() calls took {elapsed:.2f}s against a dead database"
    time.sleep(0.3)  # the writer retries in the background meanwhile
    stopping = time.perf_counter()
    log.close()
    assert time.perf_counter() - stopping < 10
    assert log.written == 0 and log.dropped == 300 and sum(dropped) == 300


def test_records_wait_for_a_database_that_comes_back() -> None:
    import psycopg

    name = f"modelyard_test_late_{uuid.uuid4().hex[:10]}"
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    log = PredictionLogger(url, flush_interval_s=0.05)
    log.start()
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        try:
            _record(log, 12)
            time.sleep(0.3)  # a few failed attempts: the database does not exist yet
            assert log.written == 0 and log.buffered == 12
            admin.execute(f'CREATE DATABASE "{name}"')
            assert log.flush(15), "records not written after the database came back"
            log.close()
            assert count_rows(url) == 12 and log.dropped == 0
        finally:
            log.close()
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_raw_inputs_only_when_asked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    for store in (False, True):
        url = f"sqlite:///{tmp_path / f'log-{store}.db'}"
        log = PredictionLogger(url, store_inputs=store)
        log.start()
        log.record(
            "m", "1", ["r"], {}, np.zeros((1, 4)), ["a"], np.ones(1), 0.1, raw_inputs=[b"px"]
        )
        log.close()
        engine = create_log_engine(url)
        with engine.connect() as connection:
            raw = connection.execute(sa.text("SELECT raw_input FROM predictions")).scalar_one()
        engine.dispose()
        assert raw == (b"px" if store else None)


def test_bad_arguments_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLogger(url)
    with pytest.raises(ValueError, match="confidences has 1 entries for 2 labels"):
        log.record("m", "1", ["a", "b"], {}, np.zeros((2, 4)), ["x", "y"], np.ones(1), 0.1)
    with pytest.raises(ValueError, match="sample_rate"):
        PredictionLogger(url, sample_rate=1.5)
    never = PredictionLogger(url, sample_rate=0.0)
    assert not any(never.should_log() for _ in range(100))
    assert all(log.should_log() for _ in range(100))


def test_non_finite_values_are_stored_as_missing(log_url: str) -> None:
    log = PredictionLogger(log_url)
    log.start()
    log.record(
        "m",
        "1",
        ["a", "b"],
        {"length_chars": np.array([np.nan, 3.0])},
        np.array([[np.inf, 0.0], [1.0, 2.0]]),
        ["x", "y"],
        np.array([0.5, np.nan]),
        0.1,
        kind="text",
    )
    log.close()
    assert log.written == 2 and log.dropped == 0
    engine = create_log_engine(log_url)
    window = read_window(engine, "m")
    engine.dispose()
    assert (
        np.isnan(window.summaries["length_chars"][0]) and window.summaries["length_chars"][1] == 3
    )
    assert np.isnan(window.projection[0, 0]) and np.isnan(window.confidences[1])


def test_rows_with_and_without_top_labels_are_written_in_order_in_one_write(
    log_url: str,
) -> None:
    """A write mixing batches that carry top labels (text answers below a threshold)
    with batches that do not (written without the column's parameter) keeps the
    order of the rows and puts each top label on its own row."""

    log = PredictionLogger(log_url, flush_interval_s=600)
    log.start()
    _record(log, 2)
    log.record(
        "m",
        "1",
        ["t0", "t1"],
        {},
        np.zeros((2, 0)),
        ["unknown", "da"],
        [0.4, 0.9],
        0.01,
        kind="text",
        top_labels=["sv", None],
    )
    _record(log, 1, role="shadow")
    log.close()
    assert (log.written, log.dropped) == (5, 0)
    assert logged_rows(log_url, "request_id, label, top_label, role") == [
        ("req-0", "0", None, "main"),
        ("req-1", "1", None, "main"),
        ("t0", "unknown", "sv", "main"),
        ("t1", "da", None, "main"),
        ("req-0", "0", None, "shadow"),
    ]


def _is_checkpoint(call: Callable[[], None]) -> bool:
    """Whether what the log hands ``write_through`` is a WAL checkpoint, not a write."""
    return getattr(call, "func", None) is predlog.checkpoint


def test_each_write_runs_through_write_through_and_the_encoding_does_not(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    seen: list[tuple[int, int, bool]] = []

    checkpoints: list[str] = []

    def write_through(write: Callable[[], None]) -> None:
        if _is_checkpoint(write):  # the WAL's, not a write
            checkpoints.append(threading.current_thread().name)
            write()
            return
        before = count_rows(url) if (tmp_path / "log.db").exists() else 0
        write()
        on_log_thread = threading.current_thread().name == THREAD_NAME
        seen.append((before, count_rows(url), on_log_thread))

    log = PredictionLogger(url, flush_interval_s=3600, write_through=write_through)
    log.start()
    _record(log, 4)
    assert log.flush(10)
    _record(log, 3)
    log.close()
    # each write committed inside write_through, which the log thread called
    assert seen == [(0, 4, True), (4, 7, True)] and log.written == 7
    # and each checkpoint too (the shadow's lane: an idle thread preempted holding the
    # checkpoint lock would leave the server's checkpoints finding it taken)
    assert checkpoints and set(checkpoints) <= {CHECKPOINT_THREAD_NAME, "MainThread"}
    assert checkpoints[-1] == "MainThread"  # close() checkpoints once more itself


def test_a_write_that_fails_through_write_through_is_kept_and_tried_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    calls: list[int] = []

    def flaky(write: Callable[[], None]) -> None:
        if _is_checkpoint(write):
            write()
            return
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk went away")
        write()

    log = PredictionLogger(url, flush_interval_s=3600, write_through=flaky)
    log.start()
    _record(log, 2)
    assert log.flush(10)  # failed once, kept, written when tried again for the asker
    assert len(calls) == 2
    log.close()
    assert count_rows(url) == 2 and log.dropped == 0


def test_rows_the_database_would_refuse_are_dropped_without_a_write(tmp_path) -> None:  # type: ignore[no-untyped-def]
    entered: list[int] = []

    def write_through(write: Callable[[], None]) -> None:
        entered.append(0 if _is_checkpoint(write) else 1)
        write()

    log = PredictionLogger(f"sqlite:///{tmp_path / 'log.db'}", flush_interval_s=3600)
    log.write_through = write_through
    log.start()
    summaries = {"s": np.array([object()])}  # no float: encoding the row fails
    log.record("m", "1", ["a"], summaries, np.zeros((1, 2)), ["x"], np.ones(1), 0.0)
    log.close()
    assert 1 not in entered and log.dropped == 1

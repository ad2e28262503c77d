"""A prediction log written before the ``role`` and ``top_label`` columns existed
(SQLite and PostgreSQL): readers read it as it is, a writer adds the columns, and its
old rows keep working."""

from __future__ import annotations

import time

import sqlalchemy as sa

from modelyard.monitor.logstore import (
    create_log_engine,
    ensure_schema,
    has_column,
    has_role_column,
    latest_version,
    read_window,
    write_rows,
)
from modelyard.monitor.predlog import PredictionLogger

OLD_COLUMNS = (
    "time, model, version, request_id, kind, label, confidence, latency_s, summary, projection"
)


def _old_log(engine: sa.engine.Engine) -> None:
    """The ``predictions`` table as modelyard created it before rows had a role."""
    old = sa.MetaData()
    sa.Table(
        "predictions",
        old,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("latency_s", sa.Float, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("projection", sa.JSON, nullable=False),
        sa.Column("raw_input", sa.LargeBinary, nullable=True),
    )
    old.create_all(engine)
    now = time.time() - 10
    with engine.begin() as connection:
        for request_id, version in (("a", "1"), ("a", "2"), ("b", "1"), ("b", "2")):
            connection.execute(
                sa.text(
                    f"INSERT INTO predictions ({OLD_COLUMNS}) VALUES (:t, 'm', :v, :r, "
                    "'image', 'cat', 0.9, 0.01, '{\"x\": 0.5}', '[]')"
                ),
                {"t": now, "v": version, "r": request_id},
            )


def test_an_old_log_is_read_then_migrated_by_a_writer(log_url: str) -> None:
    engine = create_log_engine(log_url)
    try:
        _old_log(engine)
        assert not has_role_column(engine)
        # readers: nothing written, nothing changed
        window = read_window(engine, "m")
        assert window.versions == ["1", "2", "1", "2"]
        assert list(window.summaries["x"]) == [0.5] * 4
        assert latest_version(engine, "m") == "1"  # each request's second row: a shadow's
        assert window.labels == ["cat"] * 4
        assert not has_role_column(engine)
        assert not has_column(engine, "top_label")

        # a server's logger adds the column before its first write
        log = PredictionLogger(log_url)
        log.start()
        log.record("m", "3", ["c"], {"x": [0.25]}, [[]], ["dog"], [0.8], 0.01, role="canary")
        # a text answer below min_confidence: served unknown, the model's top was cat
        log.record(
            "m", "3", ["d"], {"x": [0.5]}, [[]], ["unknown"], [0.4], 0.01, top_labels=["cat"]
        )
        log.close()
        assert has_role_column(engine)
        assert has_column(engine, "top_label")
        ensure_schema(engine)  # a second worker's check: nothing left to add
        window = read_window(engine, "m")
        assert window.versions == ["1", "2", "1", "2", "3", "3"]
        # drift reads the model's own answers; old rows hold them in label
        assert window.labels == ["cat"] * 4 + ["dog", "cat"]
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT role, label, top_label FROM predictions ORDER BY id")
            ).all()
        assert [tuple(row) for row in rows] == [(None, "cat", None)] * 4 + [
            ("canary", "dog", None),
            ("main", "unknown", "cat"),
        ]
        assert latest_version(engine, "m") == "3"
        # an old row's id inference still holds next to rows that say their role
        row = (
            time.time() + 5,
            "m",
            "2",
            "c",
            "image",
            "dog",
            0.8,
            0.01,
            "{}",
            "[]",
            None,
            None,
            None,
        )
        write_rows(engine, [row])
        assert latest_version(engine, "m") == "3"
    finally:
        engine.dispose()

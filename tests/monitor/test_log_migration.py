"""A prediction log written before the ``role`` column existed (SQLite and PostgreSQL):
readers read it as it is, a writer adds the column, and its old rows keep working."""

from __future__ import annotations

import time

import sqlalchemy as sa

from modelyard.monitor.logstore import (
    create_log_engine,
    ensure_schema,
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
        assert not has_role_column(engine)

        # a server's logger adds the column before its first write
        log = PredictionLogger(log_url)
        log.start()
        log.record("m", "3", ["c"], {"x": [0.25]}, [[]], ["dog"], [0.8], 0.01, role="canary")
        log.close()
        assert has_role_column(engine)
        ensure_schema(engine)  # a second worker's check: nothing left to add
        window = read_window(engine, "m")
        assert window.versions == ["1", "2", "1", "2", "3"]
        with engine.connect() as connection:
            roles = connection.execute(sa.text("SELECT role FROM predictions ORDER BY id")).all()
        assert [role for (role,) in roles] == [None, None, None, None, "canary"]
        assert latest_version(engine, "m") == "3"
        # an old row's id inference still holds next to rows that say their role
        row = (time.time() + 5, "m", "2", "c", "image", "dog", 0.8, 0.01, "{}", "[]", None, None)
        write_rows(engine, [row])
        assert latest_version(engine, "m") == "3"
    finally:
        engine.dispose()

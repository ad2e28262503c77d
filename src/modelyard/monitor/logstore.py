"""The prediction log's table, engines and window reads (SQLAlchemy Core).

One table, ``predictions``, one row per predicted instance. The server writes it
(:mod:`modelyard.monitor.predlog`); drift checks read windows of it. SQLite in WAL
mode under ``MODELYARD_HOME`` by default, PostgreSQL (psycopg) by URL.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import orjson
except ImportError:  # the monitor extra alone: the standard library encodes
    orjson = None  # type: ignore[assignment]  # the module is optional
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelyard.errors import DataError, MissingExtra, UsageError
from modelyard.paths import home_dir

LOG_URL_ENV = "MODELYARD_PREDICTION_LOG"
LOG_FILE = "predictions.db"

metadata = sa.MetaData()

REQUEST_ID_CHARS = 128
"""Width of the log's request-id columns. Ids are the client's to choose (``X-Request-ID``,
a v2 body's ``id``); longer ones are cut to this when logged and when labelled, so
feedback that names the id the server echoed finds its row."""

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("time", sa.Float, nullable=False, doc="Unix seconds (UTC) of the answer"),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(REQUEST_ID_CHARS), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, doc="input kind: image, text"),
    sa.Column(
        "label",
        sa.String(200),
        nullable=False,
        doc="the label the client was served: below a text model's min_confidence its "
        "low_confidence_label (rows written before top_label existed hold the top class)",
    ),
    sa.Column("confidence", sa.Float, nullable=True, doc="the top class's; None when not finite"),
    sa.Column("latency_s", sa.Float, nullable=False, doc="the whole request's latency"),
    sa.Column("summary", sa.JSON, nullable=False, doc="{feature: value} input summary"),
    sa.Column("projection", sa.JSON, nullable=False, doc="embedding in the profile's PCA basis"),
    sa.Column("raw_input", sa.LargeBinary, nullable=True, doc="only when configured"),
    sa.Column(
        "role",
        sa.String(16),
        nullable=True,
        doc="which of the server's aliases answered: main, canary or shadow; NULL in rows "
        "written before the column existed",
    ),
    sa.Column(
        "top_label",
        sa.String(200),
        nullable=True,
        doc="the model's top class where the served label differs (an answer below "
        "min_confidence); NULL where they are the same, and in rows written before the "
        "column existed",
    ),
    sa.Index("ix_predictions_model_time", "model", "time"),
    sa.Index("ix_predictions_model_request", "model", "request_id"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("time", sa.Float, nullable=False, doc="Unix seconds (UTC) the label arrived"),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("request_id", sa.String(REQUEST_ID_CHARS), nullable=False),
    sa.Column("label", sa.String(200), nullable=False, doc="the true label"),
    sa.Index("ix_feedback_model_request", "model", "request_id"),
)
"""Ground-truth labels sent after the fact, joined to ``predictions`` by model and
request id (the newest label of an id wins)."""


def default_log_url() -> str:
    """``$MODELYARD_PREDICTION_LOG`` or a SQLite file under ``MODELYARD_HOME``."""
    return os.environ.get(LOG_URL_ENV) or f"sqlite:///{home_dir() / LOG_FILE}"


def _normalise(url: str) -> str:
    # Plain postgresql:// would pick psycopg2; modelyard ships psycopg (3).
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)


def encode_json(value: Any) -> str:
    """The JSON text of a value, as stored in the log's JSON columns.

    orjson when installed (the serve extra has it), else the standard library: the
    server's log thread encodes two JSON columns per prediction, and with the standard
    encoder that was ~15% of the thread's time, all of it holding the GIL the event
    loop needs (py-spy, c=32, 2026-11-24). orjson writes NaN as null. A plain module
    function: psycopg warns that closures given to it as serializers may leak.
    """
    if orjson is None:
        return json.dumps(value)
    return orjson.dumps(value).decode()


def create_log_engine(url: str | None = None, *, checkpoint_on_commit: bool = True) -> Engine:
    """An engine for the log; SQLite gets WAL, PostgreSQL a short connect timeout.

    ``checkpoint_on_commit=False`` turns off SQLite's automatic checkpoint on this
    engine's connections (``wal_autocheckpoint=0``): the committing transaction no
    longer copies the WAL into the database and fsyncs it, and whoever asks for that
    must call :func:`checkpoint` itself (the server's log does, on a thread of its
    own). PostgreSQL ignores it."""
    url = _normalise(url or default_log_url())
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise UsageError(
            f"'{url}' is not a database URL; use sqlite:///path/log.db or postgresql://user@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30}, json_serializer=encode_json)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, record: Any) -> None:
            cursor = connection.cursor()
            # WAL: readers (drift checks) never block the writer; synchronous=NORMAL
            # keeps every committed batch across a process kill.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            if not checkpoint_on_commit:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise MissingExtra(
                "a PostgreSQL prediction log needs psycopg: pip install 'modelyard[monitor]'"
            ) from None
        return sa.create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 5},
            json_serializer=encode_json,
        )
    raise UsageError(
        f"unsupported prediction log database '{parsed.get_backend_name()}'; "
        "use sqlite:///... or postgresql://..."
    )


def checkpoint(engine: Engine) -> None:
    """Copy what SQLite's WAL holds into the database file (a PASSIVE checkpoint: it
    waits for no reader or writer, and no writer waits for it); nothing elsewhere.

    Its fsync of the database file is what made a commit that ran the automatic
    checkpoint take 0.1-0.7 s now and then on a 2-vCPU VM's disk, against ~1 ms for
    the other commits (benchmarks/serving/RESULTS.md, 2026-12-07 08:05)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()


def ensure_schema(engine: Engine) -> None:
    """Create the tables if missing, and add the columns a log written by an older
    modelyard lacks (several server workers may race to do either)."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except sa.exc.IntegrityError:  # another process created it between check and create
        metadata.create_all(engine, checkfirst=True)
    except sa.exc.ProgrammingError as error:
        if "already exists" not in str(error):
            raise
    except sa.exc.OperationalError as error:
        if "already exists" not in str(error):
            raise
    _add_missing_columns(engine)


ADDED_COLUMNS = ("role", "top_label")
"""Columns of ``predictions`` added after its first release: nullable, so an older
log gains them with ``ALTER TABLE ... ADD COLUMN`` and its old rows read as NULL."""


def _add_missing_columns(engine: Engine) -> None:
    present = {column["name"] for column in sa.inspect(engine).get_columns("predictions")}
    for name in ADDED_COLUMNS:
        if name in present:
            continue
        column = predictions.c[name]
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f"ALTER TABLE predictions ADD COLUMN {name} {kind}")
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as error:
            # another worker added it first: SQLite says duplicate, PostgreSQL exists
            if "duplicate" not in str(error) and "already exists" not in str(error):
                raise


def has_column(engine: Engine, name: str) -> bool:
    """Whether the log's ``predictions`` table has the column ``name`` (one of
    :data:`ADDED_COLUMNS`: a log no newer server has written to lacks it; readers
    must still read it)."""
    try:
        columns = sa.inspect(engine).get_columns("predictions")
    except sa.exc.NoSuchTableError:
        return False
    return any(column["name"] == name for column in columns)


def has_role_column(engine: Engine) -> bool:
    """Whether the log's ``predictions`` table has the ``role`` column."""
    return has_column(engine, "role")


def top_label_column(engine: Engine) -> sa.ColumnElement[str]:
    """The model's own top class of a row: ``top_label`` where the served label
    differs, else ``label`` (a log without the column holds top classes only)."""
    table = predictions
    if has_column(engine, "top_label"):
        return sa.func.coalesce(table.c.top_label, table.c.label)
    return table.c.label


ROW_COLUMNS = (
    "time",
    "model",
    "version",
    "request_id",
    "kind",
    "label",
    "confidence",
    "latency_s",
    "summary",
    "projection",
    "raw_input",
    "role",
    "top_label",
)
"""The order of the values in a row given to :func:`write_rows`. A row may stop before
``top_label`` (NULL): every row of an image model does, and binding a NULL parameter
per row cost SQLite ~0.5 us a row (about 15% of the write, loaded 2-core box)."""


@functools.lru_cache(maxsize=8)
def _insert_sql(dialect: sa.engine.Dialect, width: int) -> tuple[str, bool]:
    """The INSERT for a row of the first ``width`` :data:`ROW_COLUMNS`, as the driver
    takes it, and whether it names its parameters (PostgreSQL's ``%(name)s``) rather
    than numbering them (SQLite's ``?``)."""
    columns = ROW_COLUMNS[:width]
    compiled = predictions.insert().compile(dialect=dialect, column_keys=list(columns))
    if compiled.positional:
        if tuple(compiled.positiontup or ()) != columns:
            raise AssertionError(f"unexpected INSERT parameter order {compiled.positiontup}")
        return str(compiled), False
    return str(compiled), True


SQLITE_ROWS_PER_INSERT = 256
"""Most rows one SQLite ``INSERT ... VALUES (...), (...)`` carries: 3,328 parameters
for 13 columns, within the 32,766 of SQLite since 3.32; fewer where the library
allows fewer (:func:`_sqlite_rows_per_insert`)."""


def _sqlite_rows_per_insert(connection: sa.Connection, width: int) -> int:
    """Rows of ``width`` values one INSERT may bind on this connection: a power of two
    up to :data:`SQLITE_ROWS_PER_INSERT` within its parameter limit (999 before SQLite
    3.32, assumed where Python cannot ask: before 3.11)."""
    raw = connection.connection.dbapi_connection
    getlimit = getattr(raw, "getlimit", None)
    limit = 999 if getlimit is None else int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    rows = SQLITE_ROWS_PER_INSERT
    while rows > 1 and rows * width > limit:
        rows //= 2
    return rows


@functools.lru_cache(maxsize=32)
def _sqlite_insert_many_sql(width: int, rows: int) -> str:
    """An INSERT of ``rows`` rows of the first ``width`` :data:`ROW_COLUMNS` in one
    statement, numbered parameters in row order."""
    row = "(" + ", ".join("?" * width) + ")"
    columns = ", ".join(ROW_COLUMNS[:width])
    return f"INSERT INTO predictions ({columns}) VALUES " + ", ".join([row] * rows)


def _sqlite_chunks(count: int, most: int = SQLITE_ROWS_PER_INSERT) -> list[int]:
    """``count`` rows as statement sizes: full ``most`` ones (a power of two), the rest
    as smaller powers of two (a few distinct statements, each prepared once and cached
    by the driver, however many rows a write has)."""
    sizes = [most] * (count // most)
    rest = count % most
    size = most
    while rest:
        size //= 2
        if rest >= size:
            sizes.append(size)
            rest -= size
    return sizes


def write_rows(engine: Engine, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows in one transaction (all or none).

    Each row holds the values of :data:`ROW_COLUMNS` in that order (or all but the
    last), the JSON columns already as text (:func:`encode_json`). They go straight to
    the driver, one run of rows of one width after the other, in order: SQLAlchemy's
    per-row parameter processing cost ~8 us per row on the server's log thread, all of
    it holding the GIL the event loop needs.

    SQLite gets a few multi-row INSERTs rather than ``executemany``: the driver lets
    the GIL go around each statement it steps, so ``executemany`` gave it up and took
    it back twice a row, and beside a busy event loop every taking back waited. The log
    thread spent 4-7x its CPU time in wall time per row (40-67 us against 8-13 at
    ~11,000 answers/s, 2 vCPUs), so it kept up with only about twice the answer
    rate (benchmarks/serving/RESULTS.md, 2026-12-07 08:05).
    """
    if not rows:
        return
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as connection:
        start = 0
        while start < len(rows):
            width = len(rows[start])
            stop = start + 1
            while stop < len(rows) and len(rows[stop]) == width:
                stop += 1
            if sqlite:
                most = _sqlite_rows_per_insert(connection, width)
                for size in _sqlite_chunks(stop - start, most):
                    flat = [value for row in rows[start : start + size] for value in row]
                    connection.exec_driver_sql(_sqlite_insert_many_sql(width, size), tuple(flat))
                    start += size
                continue
            sql, named = _insert_sql(engine.dialect, width)
            params: list[Any] = rows[start:stop] if start or stop < len(rows) else rows
            if named:
                columns = ROW_COLUMNS[:width]
                params = [dict(zip(columns, row, strict=True)) for row in params]
            connection.exec_driver_sql(sql, params)
            start = stop


@dataclass(frozen=True)
class LogWindow:
    """A window of logged predictions, oldest first, as arrays. ``labels`` are the
    model's own top classes (what the reference profile holds), not the served ones:
    a confidence threshold is a serving choice, and drift tests the model."""

    times: np.ndarray
    versions: list[str]
    request_ids: list[str]
    labels: list[str]
    confidences: np.ndarray
    latencies: np.ndarray
    summaries: dict[str, np.ndarray]
    projection: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def read_window(
    engine: Engine,
    model: str,
    *,
    version: str | None = None,
    since: float | None = None,
    until: float | None = None,
    last: int | None = None,
) -> LogWindow:
    """The records of ``model`` (and ``version``) in ``[since, until]``, at most the ``last``."""
    table = predictions
    # Named columns, not the table's: a log an older server wrote lacks newer ones.
    columns: list[sa.ColumnElement[Any]] = [table.c[name] for name in _WINDOW_COLUMNS]
    columns[_WINDOW_COLUMNS.index("label")] = top_label_column(engine).label("label")
    query = sa.select(*columns).where(table.c.model == model)
    if version is not None:
        query = query.where(table.c.version == version)
    if since is not None:
        query = query.where(table.c.time >= since)
    if until is not None:
        query = query.where(table.c.time <= until)
    query = query.order_by(table.c.time.desc(), table.c.id.desc())
    if last is not None:
        query = query.limit(last)
    try:
        with engine.connect() as connection:
            rows = list(connection.execute(query).mappings())
    except sa.exc.OperationalError as error:
        if "no such table" in str(error):
            rows = []
        else:
            raise DataError(f"cannot read the prediction log: {error}") from None
    except sa.exc.ProgrammingError as error:
        if "does not exist" in str(error):
            rows = []
        else:
            raise
    rows.reverse()
    return window_from_rows(rows)


_WINDOW_COLUMNS = (
    "id",
    "time",
    "version",
    "request_id",
    "label",
    "confidence",
    "latency_s",
    "summary",
    "projection",
)


def window_from_rows(rows: list[Any]) -> LogWindow:
    names = sorted({key for row in rows for key in row["summary"]})
    return LogWindow(
        times=np.array([row["time"] for row in rows], dtype=np.float64),
        versions=[row["version"] for row in rows],
        request_ids=[row["request_id"] for row in rows],
        labels=[row["label"] for row in rows],
        confidences=np.array([row["confidence"] for row in rows], dtype=np.float64),
        latencies=np.array([row["latency_s"] for row in rows], dtype=np.float64),
        summaries={
            name: np.array([row["summary"].get(name, np.nan) for row in rows], dtype=np.float64)
            for name in names
        },
        projection=np.array([row["projection"] for row in rows], dtype=np.float64).reshape(
            len(rows), -1 if rows else 0
        ),
    )


def latest_version(engine: Engine, model: str) -> str | None:
    """The version of ``model``'s most recent answer, or None when it has none.

    A shadow's row does not count: the served version is meant. Rows say so in their
    ``role``. A row written before that column existed (NULL) is taken for a shadow's
    when it is the second row of a request id (the main prediction of a request is
    queued first, in the same process, so it has the smaller id); only there can a
    client that reused a request id make this look at an earlier answer.
    """
    table = predictions
    earlier = table.alias("earlier")
    shadowed_by_id = (
        sa.select(earlier.c.id)
        .where(earlier.c.model == table.c.model)
        .where(earlier.c.request_id == table.c.request_id)
        .where(earlier.c.id < table.c.id)
        .exists()
    )
    served = ~shadowed_by_id
    if has_role_column(engine):
        served = sa.or_(
            sa.and_(table.c.role.is_not(None), table.c.role != "shadow"),
            sa.and_(table.c.role.is_(None), ~shadowed_by_id),
        )
    query = (
        sa.select(table.c.version)
        .where(table.c.model == model)
        .where(served)
        .order_by(table.c.time.desc(), table.c.id.desc())
        .limit(1)
    )
    try:
        with engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return None

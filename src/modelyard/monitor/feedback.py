"""Feedback labels: parse them, check them against the prediction log, store them,
and read them back joined with the predictions they label.

The server's ``POST /v1/feedback`` and ``modelyard feedback import`` both end in
:func:`record_feedback`. A label is accepted only for a request id the log holds
(or the server logged moments ago and has not written yet) and only when it is one
of the model's labels; otherwise nothing of the batch is stored and the error names
the offending ids or labels, so a client can fix and resend the whole batch.
An id that was sampled out of the log (``log_sample_rate``) is unknown here: there
is no prediction to compare its label with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelyard.errors import DataError, ModelyardError
from modelyard.monitor.logstore import (
    REQUEST_ID_CHARS,
    ensure_schema,
    feedback,
    has_role_column,
    predictions,
)

MAX_BATCH = 10_000
"""Most labels one request or file may carry."""
_SHOWN = 5
_CHUNK = 500  # ids per IN (...) query: well under SQLite's parameter limit


class FeedbackError(ModelyardError):
    """Feedback that cannot be stored: malformed, unknown ids or unknown labels."""


class UnknownIds(FeedbackError):
    """Request ids the log does not hold (yet: another server process may not have
    written them), ``ids`` naming them."""

    def __init__(self, message: str, ids: set[str]) -> None:
        super().__init__(message)
        self.ids = ids


@dataclass(frozen=True)
class Label:
    request_id: str
    label: str


def _shown(values: Iterable[str]) -> str:
    listed = sorted(set(values))
    more = f" and {len(listed) - _SHOWN} more" if len(listed) > _SHOWN else ""
    return ", ".join(listed[:_SHOWN]) + more


def parse_labels(body: Any) -> list[Label]:
    """``{"id": ..., "label": ...}``, a list of them, or ``{"labels": [...]}``."""
    items = body.get("labels") if isinstance(body, dict) and "labels" in body else body
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise FeedbackError(
            'feedback must be {"id": "<request id>", "label": "<label>"} '
            "or a non-empty list of them"
        )
    if len(items) > MAX_BATCH:
        raise FeedbackError(f"{len(items)} labels in one batch; send at most {MAX_BATCH}")
    labels = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"id", "label"}:
            raise FeedbackError(
                f'feedback item {index} must have exactly the keys "id" and "label"'
            )
        request_id, label = item["id"], item["label"]
        if isinstance(label, int) and not isinstance(label, bool):
            label = str(label)  # digits' labels are "0".."9"; a client may send 3
        if not isinstance(request_id, str) or not request_id:
            raise FeedbackError(f"feedback item {index}: id must be a non-empty string")
        request_id = request_id[:REQUEST_ID_CHARS]  # as the log holds it
        if not isinstance(label, str) or not 0 < len(label) <= 200:
            raise FeedbackError(
                f"feedback item {index}: label must be a string of 1-200 characters"
            )
        labels.append(Label(request_id, label))
    return labels


def logged_ids(engine: Engine, model: str, request_ids: Sequence[str]) -> set[str]:
    """Which of ``request_ids`` the log holds a prediction of ``model`` for."""
    found: set[str] = set()
    unique = sorted(set(request_ids))
    try:
        with engine.connect() as connection:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                query = (
                    sa.select(predictions.c.request_id)
                    .where(predictions.c.model == model)
                    .where(predictions.c.request_id.in_(chunk))
                    .distinct()
                )
                found.update(connection.execute(query).scalars())
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as error:
        if "no such table" in str(error) or "does not exist" in str(error):
            return found
        raise
    return found


def record_feedback(
    engine: Engine,
    model: str,
    labels: Sequence[Label],
    known_labels: Sequence[str],
    pending: Callable[[str], bool] | None = None,
) -> int:
    """Check and store ``labels`` for ``model`` (all or none); returns how many.

    ``pending`` says whether an id was logged but may not be written yet (the
    server's recent ids); those count as known.
    """
    wrong = [item.label for item in labels if item.label not in set(known_labels)]
    if wrong:
        raise FeedbackError(
            f"unknown label(s) {_shown(wrong)} for model '{model}'; "
            f"its labels are {', '.join(known_labels)}"
        )
    ids = [item.request_id for item in labels]
    missing = set(ids)
    if pending is not None:
        missing = {i for i in missing if not pending(i)}
    if missing:
        missing -= logged_ids(engine, model, sorted(missing))
    if missing:
        raise UnknownIds(
            f"unknown request id(s) {_shown(missing)}: the prediction log of '{model}' has no "
            "prediction with that id (never served here, or sampled out by log_sample_rate); "
            "nothing of this batch was stored",
            missing,
        )
    ensure_schema(engine)
    now = time.time()
    rows = [
        {"time": now, "model": model, "request_id": i.request_id, "label": i.label} for i in labels
    ]
    with engine.begin() as connection:
        connection.execute(feedback.insert(), rows)
    return len(rows)


@dataclass(frozen=True)
class Labelled:
    """Predictions that have a feedback label, oldest first."""

    times: list[float]
    versions: list[str]
    predicted: list[str]
    actual: list[str]
    latencies: list[float]
    request_ids: list[str]

    def __len__(self) -> int:
        return len(self.actual)


def read_labelled(
    engine: Engine, model: str, since: float | None = None, last: int | None = None
) -> Labelled:
    """The logged predictions of ``model`` joined with their newest feedback label.

    A label names a request, not an instance: one for a request that carried several
    instances cannot say which it belongs to, and is left out. (It was joined to every
    instance: one label counted ten times, against ten different inputs.) So is one
    for an id that a version answered twice in the same role (a client's retry that
    reused its id); a shadow of the main model's own version answers in its own role."""
    newest = (
        sa.select(feedback.c.request_id, sa.func.max(feedback.c.id).label("fid"))
        .where(feedback.c.model == model)
        .group_by(feedback.c.request_id)
        .subquery()
    )
    other = predictions.alias("other")
    alone = [  # no other row of this request by this version in this role
        other.c.model == predictions.c.model,
        other.c.request_id == predictions.c.request_id,
        other.c.version == predictions.c.version,
        other.c.id != predictions.c.id,
    ]
    if has_role_column(engine):  # a shadow of the main's own version logs each twice
        alone.append(other.c.role.is_not_distinct_from(predictions.c.role))
    single = ~sa.exists().where(*alone)
    query = (
        sa.select(
            predictions.c.time,
            predictions.c.version,
            predictions.c.label,
            feedback.c.label.label("actual"),
            predictions.c.latency_s,
            predictions.c.request_id,
        )
        .join(newest, newest.c.request_id == predictions.c.request_id)
        .join(feedback, feedback.c.id == newest.c.fid)
        .where(predictions.c.model == model, single)
    )
    if since is not None:
        query = query.where(predictions.c.time >= since)
    query = query.order_by(predictions.c.time.desc(), predictions.c.id.desc())
    if last is not None:
        query = query.limit(last)
    try:
        with engine.connect() as connection:
            rows = list(connection.execute(query))
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as error:
        if "no such table" in str(error) or "does not exist" in str(error):
            rows = []
        else:
            raise DataError(f"cannot read the prediction log: {error}") from None
    rows.reverse()
    return Labelled(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        [r[5] for r in rows],
    )

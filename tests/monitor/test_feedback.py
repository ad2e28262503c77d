"""Feedback labels on SQLite and PostgreSQL: checked against the log, stored all or
none, joined back to the predictions (newest label wins)."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.monitor.feedback import (
    FeedbackError,
    Label,
    parse_labels,
    read_labelled,
    record_feedback,
)
from modelyard.monitor.logstore import create_log_engine
from modelyard.monitor.predlog import PredictionLogger

LABELS = ["cat", "dog", "eel"]


def _log(url: str, version: str, ids: list[str], predicted: list[str], role: str = "main") -> None:
    rows = len(ids)
    log = PredictionLogger(url)
    log.start()
    log.record(
        "m",
        version,
        ids,
        {"x": np.zeros(rows)},
        np.zeros((rows, 2)),
        predicted,
        np.full(rows, 0.9),
        0.01,
        role=role,
    )
    log.close()


def test_parse_accepts_one_a_list_or_labels_and_names_what_is_wrong() -> None:
    assert parse_labels({"id": "a", "label": "cat"}) == [Label("a", "cat")]
    assert parse_labels([{"id": "a", "label": 3}]) == [Label("a", "3")]
    assert parse_labels({"labels": [{"id": "b", "label": "dog"}]}) == [Label("b", "dog")]
    # The id the server echoed, longer than the log keeps: cut as the log cut it.
    assert parse_labels({"id": "x" * 200, "label": "cat"}) == [Label("x" * 128, "cat")]
    for bad, words in [
        ([], "non-empty list"),
        ("cat", "non-empty list"),
        ([{"id": "a"}], 'item 0 must have exactly the keys "id" and "label"'),
        ([{"id": "a", "label": "x", "extra": 1}], "item 0"),
        ([{"id": 5, "label": "cat"}], "item 0: id must be a non-empty string"),
        ([{"id": "a", "label": "cat"}, {"id": "b", "label": None}], "item 1: label"),
        ([{"id": "", "label": "cat"}], "non-empty string"),
    ]:
        with pytest.raises(FeedbackError, match=words):
            parse_labels(bad)


def test_labels_join_their_predictions_and_the_newest_wins(log_url: str) -> None:
    _log(log_url, "1", ["a", "b", "c"], ["cat", "dog", "eel"])
    engine = create_log_engine(log_url)
    try:
        stored = record_feedback(engine, "m", [Label("a", "cat"), Label("b", "cat")], LABELS)
        assert stored == 2
        record_feedback(engine, "m", [Label("b", "dog")], LABELS)  # a correction
        labelled = read_labelled(engine, "m")
    finally:
        engine.dispose()
    assert labelled.request_ids == ["a", "b"]
    assert labelled.predicted == ["cat", "dog"] and labelled.actual == ["cat", "dog"]
    assert labelled.versions == ["1", "1"]


def test_a_label_for_a_request_of_several_instances_is_left_out(log_url: str) -> None:
    # "r" carried three images; its one label was joined to all three, and counted three
    # times against three different inputs. A shadow answered "s" beside version 1.
    _log(log_url, "1", ["r", "r", "r", "s"], ["cat", "dog", "eel", "dog"])
    _log(log_url, "2", ["s"], ["eel"])
    engine = create_log_engine(log_url)
    try:
        record_feedback(engine, "m", [Label("r", "cat"), Label("s", "dog")], LABELS)
        labelled = read_labelled(engine, "m")
    finally:
        engine.dispose()
    assert labelled.request_ids == ["s", "s"]
    assert sorted(zip(labelled.versions, labelled.predicted, strict=True)) == [
        ("1", "dog"),
        ("2", "eel"),
    ]


def test_a_shadow_of_the_main_models_own_version_keeps_both_labelled_rows(
    log_url: str,
) -> None:
    # Right after a promote the shadow alias names the served version: each request is
    # logged twice by one version, once per role. Not a request of several instances.
    _log(log_url, "1", ["a"], ["cat"])
    _log(log_url, "1", ["a"], ["cat"], role="shadow")
    engine = create_log_engine(log_url)
    try:
        record_feedback(engine, "m", [Label("a", "cat")], LABELS)
        labelled = read_labelled(engine, "m")
    finally:
        engine.dispose()
    assert labelled.request_ids == ["a", "a"] and labelled.versions == ["1", "1"]


def test_unknown_ids_and_labels_store_nothing_and_are_named(log_url: str) -> None:
    _log(log_url, "1", ["a"], ["cat"])
    engine = create_log_engine(log_url)
    try:
        with pytest.raises(FeedbackError, match=r"unknown request id.*ghost-1, ghost-2"):
            record_feedback(
                engine,
                "m",
                [Label("a", "cat"), Label("ghost-1", "dog"), Label("ghost-2", "dog")],
                LABELS,
            )
        with pytest.raises(FeedbackError, match=r"unknown label.*zebra.*cat, dog, eel"):
            record_feedback(engine, "m", [Label("a", "zebra")], LABELS)
        # ids logged for another model are unknown for this one
        with pytest.raises(FeedbackError, match="unknown request id"):
            record_feedback(engine, "other", [Label("a", "cat")], LABELS)
        assert len(read_labelled(engine, "m")) == 0
        # an id the server queued but has not written yet counts as known
        assert (
            record_feedback(
                engine, "m", [Label("late", "eel")], LABELS, pending={"late"}.__contains__
            )
            == 1
        )
    finally:
        engine.dispose()


def test_an_empty_log_has_no_labelled_predictions(log_url: str) -> None:
    engine = create_log_engine(log_url)
    try:
        assert len(read_labelled(engine, "m")) == 0
        with pytest.raises(FeedbackError, match="unknown request id"):
            record_feedback(engine, "m", [Label("a", "cat")], LABELS)
    finally:
        engine.dispose()

"""Alias history and rollback against a real (embedded) MLflow registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers import ctrl_c_inside

from modelyard.deploy.history import read_history, record_move, rollback
from modelyard.errors import Refused


@pytest.fixture
def client(home: Path):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    from modelyard import tracking

    tracking.configure()
    client = MlflowClient()
    client.create_registered_model("m")
    for _ in range(3):
        client.create_model_version("m", source=str(home))
    return client


def test_rollback_walks_the_history_back_and_tags_why(client) -> None:  # type: ignore[no-untyped-def]
    client.set_registered_model_alias("m", "production", "1")
    record_move(client, "m", "production", None, "1")
    for previous, version in (("1", "2"), ("2", "3")):
        client.set_registered_model_alias("m", "production", version)
        record_move(client, "m", "production", previous, version)
    assert read_history(client, "m", "production") == ["1", "2", "3"]
    done = rollback(client, "m", "production", "3", "accuracy alert")
    assert (done.version, done.rolled_back) == ("2", "3")
    assert str(client.get_model_version_by_alias("m", "production").version) == "2"
    why = json.loads(client.get_model_version("m", "3").tags["modelyard.rollback.production"])
    assert why["to"] == "2" and why["reason"] == "accuracy alert"
    # a second rollback goes one further back; then there is nothing left
    assert rollback(client, "m", "production", "2", "again").version == "1"
    with pytest.raises(Refused, match="no earlier version"):
        rollback(client, "m", "production", "1", "once more")
    assert str(client.get_model_version_by_alias("m", "production").version) == "1"


def test_a_move_made_outside_modelyard_still_leaves_the_version_before(client) -> None:  # type: ignore[no-untyped-def]
    # production was set to 1 by hand, then modelyard moved it to 3
    record_move(client, "m", "production", "1", "3")
    assert rollback(client, "m", "production", "3", "bad").version == "1"


def test_no_history_refuses(client) -> None:  # type: ignore[no-untyped-def]
    client.set_registered_model_alias("m", "staging", "2")
    with pytest.raises(Refused, match="m@staging holds version 2"):
        rollback(client, "m", "staging", "2", "why")


def test_a_ctrl_c_during_the_rollbacks_move_comes_after_its_records(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Pressed inside the alias write: unheld, the alias moved (or not) with no record
    # of why, and the history still named the version left as current.
    for previous, version in ((None, "1"), ("1", "2")):
        client.set_registered_model_alias("m", "production", version)
        record_move(client, "m", "production", previous, version)
    ctrl_c_inside(monkeypatch, client, "set_registered_model_alias", every_call=True)
    with pytest.raises(KeyboardInterrupt):
        rollback(client, "m", "production", "2", "alert")
    assert str(client.get_model_version_by_alias("m", "production").version) == "1"
    assert read_history(client, "m", "production") == ["1"]
    why = json.loads(client.get_model_version("m", "2").tags["modelyard.rollback.production"])
    assert why["reason"] == "alert"

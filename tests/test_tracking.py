"""The hints modelyard prints about tracking must work when pasted into a shell, and a
tracking write that races another process's identical write is not lost, and a Ctrl-C
never lands inside a tracking write."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from tests.helpers import press_ctrl_c

from modelyard import tracking


def test_ui_hint_names_the_venvs_mlflow_when_the_venv_is_not_on_path(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    beside = Path(sys.executable).with_name("mlflow")
    assert beside.exists(), "the test environment installs mlflow beside its python"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a shell whose venv is not activated
    hint = tracking.ui_command(tracking.default_tracking_uri())
    assert hint.startswith(f"{beside} ui --backend-store-uri sqlite:///")
    assert str(tracking.artifact_root()) in hint


def test_ui_hint_says_plain_mlflow_when_it_is_on_path(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    assert tracking.ui_command(tracking.default_tracking_uri()).startswith("mlflow ui ")
    assert tracking.ui_command("http://mlflow:5000") == "open http://mlflow:5000"


def _failing(times: int, message: str, calls: list[int]) -> Callable[[], None]:
    def write() -> None:
        calls.append(1)
        if len(calls) <= times:
            raise MlflowException(message)

    return write


DUPLICATE = (
    '(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "tag_pk"'
)


def test_a_write_that_raced_another_process_is_made_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tune workers closing one parent run both insert its tags (CI saw the second
    fail on PostgreSQL): the retry finds the row and updates it."""
    monkeypatch.setattr(tracking, "CONCURRENT_WRITE_PAUSES_S", (0.0, 0.0, 0.0))
    calls: list[int] = []
    tracking.write_racing(_failing(1, DUPLICATE, calls))
    assert len(calls) == 2
    calls.clear()
    tracking.write_racing(_failing(2, "UNIQUE constraint failed: tags.key, tags.run_uuid", calls))
    assert len(calls) == 3


def test_other_errors_and_a_duplicate_that_persists_are_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracking, "CONCURRENT_WRITE_PAUSES_S", (0.0, 0.0, 0.0))
    calls: list[int] = []
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        tracking.write_racing(_failing(1, "RESOURCE_DOES_NOT_EXIST: no run", calls))
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(MlflowException, match="duplicate key"):
        tracking.write_racing(_failing(10, DUPLICATE, calls))
    assert len(calls) == 4  # the first try and one per pause


def test_a_ctrl_c_during_a_tracking_write_comes_after_it() -> None:
    """A KeyboardInterrupt inside an SQLite write leaves the lock held and the run
    never ends KILLED (benchmarks/reliability/ctrl_c_writes.py): it is raised after."""
    finished: list[str] = []
    with pytest.raises(KeyboardInterrupt), tracking.ctrl_c_after_write():
        press_ctrl_c()  # the signal is handled here, by the holding handler
        finished.append("write")
    assert finished == ["write"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    with tracking.ctrl_c_after_write():  # no Ctrl-C: nothing raised
        finished.append("again")
    assert finished == ["write", "again"]


def test_an_ignored_ctrl_c_stays_ignored_around_a_tracking_write() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as Lightning after one
    try:
        with tracking.ctrl_c_after_write():
            press_ctrl_c()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_second_ctrl_c_during_a_held_write_is_not_held() -> None:
    """A write that hangs (a store that is down or locked elsewhere) must not make
    Ctrl-C deaf: pressed again, it interrupts at once."""
    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt), tracking.ctrl_c_after_write():
        press_ctrl_c()
        reached.append("held once")
        press_ctrl_c()
        reached.append("held twice")
    assert reached == ["held once"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_held_write_inside_another_still_interrupts_on_the_second_ctrl_c() -> None:
    """A hold nested in another (a held write inside a held group) must still give way
    to a second press at once, not to a third."""
    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt), tracking.ctrl_c_after_write():
        with tracking.ctrl_c_after_write():
            press_ctrl_c()
            reached.append("held once")
            press_ctrl_c()
            reached.append("held twice")
        reached.append("outer write")
    assert reached == ["held once"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_in_a_nested_hold_comes_after_the_outer_block() -> None:
    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt), tracking.ctrl_c_after_write():
        with tracking.ctrl_c_after_write():
            press_ctrl_c()
            reached.append("inner write")
        reached.append("outer write")
    assert reached == ["inner write", "outer write"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

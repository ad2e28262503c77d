"""How long ``POST /v1/feedback`` holds a label whose id the log does not hold yet,
with ``--workers N``: it asks the sibling workers to write and looks once more (a
truly unknown id is refused at once); when they do not confirm it waits out the
settle window; a failing store is tried again within that window too."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from modelyard.monitor.feedback import Label, UnknownIds
from modelyard.serve.feedback import FeedbackService, settle_s

LABELS = [Label("req-1", "3")]


class Peers:
    """Sibling workers that confirm their write (or not) after ``delay_s``."""

    def __init__(self, writes: bool, delay_s: float = 0.05) -> None:
        self.writes, self.delay_s, self.asked = writes, delay_s, 0

    async def flush(self, timeout_s: float) -> bool:
        self.asked += 1
        await asyncio.sleep(min(self.delay_s, timeout_s))
        return self.writes and self.delay_s <= timeout_s


def _service(window_s: float, peers: Peers | None, answers: list[Any]) -> FeedbackService:
    """A service whose store gives ``answers`` in turn (an exception is raised)."""
    service = object.__new__(FeedbackService)
    service.settle_s = window_s
    service.peers = peers  # type: ignore[assignment]
    calls = iter(answers)

    def store(model: object, labels: list[Label]) -> int:
        answer = next(calls)
        if isinstance(answer, Exception):
            raise answer
        return int(answer)

    service._store = store  # type: ignore[method-assign]
    return service


def _unknown() -> UnknownIds:
    return UnknownIds("unknown request id(s) req-1", {"req-1"})


def _wait(service: FeedbackService) -> tuple[int | Exception, float]:
    started = time.monotonic()
    try:
        result: int | Exception = asyncio.run(service._store_when_logged(None, LABELS))  # type: ignore[arg-type]
    except Exception as error:
        result = error
    return result, time.monotonic() - started


def test_one_process_refuses_at_once_and_n_workers_hold_for_a_write() -> None:
    assert settle_s(1, 1.0) == 0.0
    assert settle_s(2, 1.0) == 3.0


def test_an_id_no_sibling_logged_is_refused_once_they_all_wrote() -> None:
    peers = Peers(writes=True)
    result, took = _wait(_service(3.0, peers, [_unknown(), _unknown()]))
    assert isinstance(result, UnknownIds)
    assert took < 1.0 and peers.asked == 1  # not the 3 s window


def test_a_label_whose_prediction_a_sibling_just_wrote_is_stored() -> None:
    peers = Peers(writes=True)
    result, took = _wait(_service(3.0, peers, [_unknown(), 1]))
    assert result == 1 and took < 1.0


def test_siblings_that_do_not_confirm_leave_the_window_as_the_bound() -> None:
    # one sibling's write failed: the label is looked for until the window ends
    peers = Peers(writes=False)
    result, took = _wait(_service(0.8, peers, [_unknown()] * 50))
    assert isinstance(result, UnknownIds)
    assert 0.6 < took < 2.0 and peers.asked == 1
    # ... and a write that lands meanwhile is still found
    result, _ = _wait(_service(0.8, Peers(writes=False), [_unknown(), _unknown(), 1]))
    assert result == 1


def test_a_failed_store_is_tried_again_within_the_window() -> None:
    locked = RuntimeError("database is locked")
    result, _ = _wait(_service(3.0, Peers(writes=True), [locked, 1]))
    assert result == 1
    result, took = _wait(_service(0.5, None, [locked] * 50))  # a database that stays down
    assert result is locked and took < 2.0


@pytest.mark.parametrize("peers", [None, Peers(writes=True)])
def test_one_process_never_waits(peers: Peers | None) -> None:
    result, took = _wait(_service(0.0, peers, [_unknown()] * 50))
    assert isinstance(result, UnknownIds) and took < 1.0

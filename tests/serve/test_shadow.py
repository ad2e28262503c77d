"""The shadow's thread priority: its model calls yield the CPU to the main path."""

from __future__ import annotations

import os
import threading

import pytest

from modelyard.serve.shadow import lower_priority


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no per-thread nice here")
def test_lower_priority_renices_only_the_calling_thread() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    seen: list[int] = []

    def shadow_thread() -> None:
        lower_priority(min(19, before + 7))
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=shadow_thread)
    thread.start()
    thread.join()
    assert seen == [min(19, before + 7)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before

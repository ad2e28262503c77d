"""The server's prediction log thread, watched from outside (Linux /proc): finding
it by the name it gives itself, and sampling its ``wchan`` on a thread of our own
while a load runs (``shadow_overhead.py``'s lock waits, ``log_stalls.py``'s stalls)."""

from __future__ import annotations

import threading
from pathlib import Path


def log_thread_task(pid: int) -> Path | None:
    """``/proc/<pid>/task/<tid>`` of process ``pid``'s log thread (named
    ``modelyard-log``), or None when it has none."""
    found = None
    for comm in Path(f"/proc/{pid}/task").glob("*/comm"):
        if comm.read_text().startswith("modelyard-log"):
            found = comm.parent
    return found


class LogThreadSampler:
    """Calls :meth:`sample` with the log thread's ``wchan`` every ``interval_s`` between
    ``__enter__`` and ``__exit__``, until the thread is gone."""

    def __init__(self, pid: int, interval_s: float) -> None:
        self.task = log_thread_task(pid)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self, wchan: str) -> None:
        """One sample: ``wchan`` as /proc reads it ("" or "0" when running)."""
        raise NotImplementedError

    def _run(self) -> None:
        while self.task is not None and not self._stop.wait(self.interval_s):
            try:
                wchan = (self.task / "wchan").read_text()
            except OSError:  # the thread ended
                return
            self.sample(wchan)

    def __enter__(self) -> LogThreadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

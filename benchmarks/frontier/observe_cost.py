"""CPU per ``ServingMonitor.observe`` call (one request queued for the log), as the
number of request ids it remembers reaches and passes its bound.

    PYTHONPATH=<a checkout's src> .venv/bin/python benchmarks/frontier/observe_cost.py

The monitor remembers the newest 50,000 request ids it queued (feedback may name one
whose row is not written yet). Once that bound is reached every call also forgets
the oldest; with a plain dict that cost grew with the keys deleted before it. The
queue is emptied every 512 calls, as the log thread does, so only ``observe`` is
timed. Set PYTHONPATH to compare two commits.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import modelyard
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import ServingMonitor
from modelyard.serve.settings import ServeSettings


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'log.db'}"
        monitor = ServingMonitor(ServeSettings(prediction_log_url=url), ServerMetrics())
        model = SimpleNamespace(name="m", version="1", role="main")
        outputs = {"probabilities": np.array([[0.9, 0.1]], dtype=np.float32)}
        ids = [os.urandom(16).hex() for _ in range(120_000)]

        def timed(start: int, stop: int) -> float:
            began = time.thread_time()
            for i in range(start, stop):
                monitor.observe(model, ids[i], [0], outputs, 0.001)  # type: ignore[arg-type]
                if i % 512 == 0:
                    monitor._queued.clear()
                    monitor._queued_rows = 0
            return 1e6 * (time.thread_time() - began) / (stop - start)

        below, past = timed(0, 40_000), timed(40_000, 120_000)
    print(
        f"{Path(modelyard.__file__).parents[1]}: {below:.2f} us CPU a call for ids 0-40k, "
        f"{past:.2f} us for ids 40k-120k"
    )


if __name__ == "__main__":
    main()

"""A busy process beside the server that is not modelyard's shadow: a bundle's ONNX
model run through ONNX Runtime in a loop, as the shadow's process would run it (the
same session options, ``shadow_threads`` intra-op threads, batches of the rows one
shadow message carries at most), with no pipe to the server and no prediction log.

    .venv/bin/python benchmarks/serving/burner.py BUNDLE_DIR --rows N --threads N
        [--nice 19] [--idle] [--share 1.0]

``shadow_overhead.py`` starts it for its ``burner`` arms, so the main path's p99 with
the shadow can be set beside its p99 with any second busy process on the other core
(shared caches, memory bandwidth, the VM's scheduler). It lowers its own priority
first (``--idle``: ``SCHED_IDLE``, as the shadow's process; else SCHED_OTHER at
``--nice``), prints ``ready`` once warmed up, runs until SIGTERM or SIGINT, then
prints one JSON line: batches, rows, seconds, rows per second and its CPU seconds.
With ``--share`` below 1 it computes only until it has spent that share of each
``PERIOD_S`` in CPU time, and sleeps for the rest: a neighbour as busy as the
shadow's process measured (its CPU seconds per second), rather than one that takes
every idle cycle.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import time
from pathlib import Path
from types import FrameType

from modelyard.serve.shadow_child import lower_priority

PERIOD_S = 0.02
"""The duty cycle's period with ``--share`` below 1 (the shadow's message linger)."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--rows", type=int, required=True, help="Rows per model call.")
    parser.add_argument("--threads", type=int, required=True, help="Intra-op threads.")
    parser.add_argument("--nice", type=int, default=19)
    parser.add_argument("--idle", action="store_true", help="SCHED_IDLE (else --nice only).")
    parser.add_argument(
        "--share", type=float, default=1.0, help="CPU share of each period to compute (0..1]."
    )
    args = parser.parse_args()
    idle = lower_priority(args.nice, args.idle)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Imported after the priority is set, as the shadow's process does
    from modelyard.bundle import INPUT_NAME, read_bundle
    from modelyard.serve.runtime import _session  # the shadow's session, options and all

    bundle = read_bundle(args.bundle)
    session = _session(bundle, args.threads, spinning=False)
    inputs = bundle.modality.warmup_input(bundle.preprocessing, args.rows)
    feed = {INPUT_NAME: inputs}
    for _ in range(3):
        session.run(None, feed)  # type: ignore[attr-defined]  # onnxruntime ships no types
    print("ready", flush=True)
    batches = 0
    started = time.perf_counter()
    cpu_before = time.process_time()
    budget = args.share * PERIOD_S
    while not stopping:
        period_started, period_cpu = time.perf_counter(), time.process_time()
        while not stopping and time.process_time() - period_cpu < budget:
            session.run(None, feed)  # type: ignore[attr-defined]  # onnxruntime ships no types
            batches += 1
        if args.share < 1:
            time.sleep(max(0.0, period_started + PERIOD_S - time.perf_counter()))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    report = {
        "idle": idle,
        "nice": args.nice,
        "share": args.share,
        "rows_per_batch": args.rows,
        "batches": batches,
        "rows": batches * args.rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(batches * args.rows / max(seconds, 1e-9), 1),
        "cpu_s": round(cpu, 3),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()

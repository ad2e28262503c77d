"""The prediction log's write cost per row with random or time-first request ids.

    .venv/bin/python benchmarks/frontier/log_id_order.py --ids random --batches 600
    .venv/bin/python benchmarks/frontier/log_id_order.py --ids time --batches 600

Writes ``--batches`` batches of 512 rows (what ``log_write_rows`` hands the log thread
at a time) into a fresh SQLite log with the real schema and ``write_rows``, and prints
the CPU and wall time per row after a quarter of the batches and at the end. The log
indexes ``(model, request_id)``: random ids (``uuid4``, what the server made up before
2026-12-06) land on a random page of that index per row, time-first ids
(:func:`modelyard.serve.dataplane.new_request_id`) at its end. ``--keep`` leaves the
file (e.g. as ``ab_serve.py --log-seed``, a server whose log already holds rows).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from modelyard.monitor.logstore import create_log_engine, encode_json, ensure_schema, write_rows
from modelyard.serve.dataplane import new_request_id

ROWS = 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", choices=["random", "time"], required=True)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--keep", type=Path, help="write the log here and leave it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="log-id-order-") as folder:
        write(args.ids, args.batches, args.keep or Path(folder) / "predictions.db")


def write(kind: str, batches: int, path: Path) -> None:
    """Write ``batches`` batches of rows with ``kind`` ids into a new log at ``path``."""
    engine = create_log_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    summary = encode_json({"mean": 0.1, "std": 0.3, "min": 0.0, "max": 1.0})
    projection = encode_json([0.1] * 8)
    cpu = wall = 0.0
    for batch in range(batches):
        ids = [os.urandom(16).hex() if kind == "random" else new_request_id() for _ in range(ROWS)]
        rows = [
            (
                time.time(),
                "mnist5k-cnn",
                "1",
                i,
                "image",
                "3",
                0.9,
                0.003,
                summary,
                projection,
                None,
                "main",
            )
            for i in ids
        ]
        started_cpu, started = time.process_time(), time.perf_counter()
        write_rows(engine, rows)
        cpu += time.process_time() - started_cpu
        wall += time.perf_counter() - started
        if batch in (batches // 4, batches - 1):
            written = (batch + 1) * ROWS
            print(
                f"{kind} ids, {written} rows: {1e6 * cpu / written:.1f} us CPU a row, "
                f"{1e6 * wall / written:.1f} us wall",
                flush=True,
            )
    engine.dispose()


if __name__ == "__main__":
    main()

"""What the prediction log costs a request, and how fast its writer drains.

* request path: ``ServingMonitor.observe`` (summaries + embedding projection
  + buffer append) for 1 and 32 MNIST-sized (28x28) images, in microseconds;
* writer: rows per second the background thread inserts into SQLite (WAL) and,
  with ``--postgres URL``, PostgreSQL.

    .venv/bin/python benchmarks/monitor/bench_log_overhead.py \
        --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from types import SimpleNamespace

import numpy as np


def _profile(rng: np.random.Generator, dims: int = 128) -> dict:  # type: ignore[type-arg]
    return {
        "embedding": {
            "projection": {
                "mean": rng.normal(size=dims).tolist(),
                "components": rng.normal(size=(4, dims)).tolist(),
            }
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres", help="admin URL of a PostgreSQL server (a scratch DB is made)"
    )
    parser.add_argument("--rows", type=int, default=20_000, help="rows for the writer test")
    args = parser.parse_args()
    os.environ.setdefault("MODELYARD_HOME", tempfile.mkdtemp(prefix="modelyard-bench-"))

    from modelyard.monitor.predlog import PredictionLogger
    from modelyard.serve.metrics import ServerMetrics
    from modelyard.serve.monitoring import ServingMonitor
    from modelyard.serve.settings import settings_from

    rng = np.random.default_rng(0)
    labels = tuple(str(i) for i in range(10))
    bundle = SimpleNamespace(reference_profile=_profile(rng), labels=labels, preprocessing=None)
    from modelyard.modality import modality_for

    model = SimpleNamespace(
        name="m", version="1", bundle=bundle, modality=modality_for("image"), spec=None
    )
    home = os.environ["MODELYARD_HOME"]
    settings = settings_from(
        [f"prediction_log_url=sqlite:///{home}/overhead.db", "log_buffer_records=10000000"],
        model="x",
    )
    monitor = ServingMonitor(settings, ServerMetrics())
    assert monitor.log is not None
    monitor.log.start()
    for batch in (1, 32):
        images = rng.integers(0, 255, (batch, 28, 28, 1), dtype=np.uint8)
        outputs = {
            "probabilities": rng.dirichlet(np.ones(10), batch).astype(np.float32),
            "embedding": rng.normal(size=(batch, 128)).astype(np.float32),
        }
        timings = []
        for _ in range(2000):
            started = time.perf_counter()
            monitor.observe(model, "req", images, outputs, 0.001)  # type: ignore[arg-type]
            timings.append(time.perf_counter() - started)
        print(
            f"request path, {batch:2d} image(s): median {statistics.median(timings) * 1e6:.0f} us, "
            f"p99 {np.quantile(timings, 0.99) * 1e6:.0f} us"
        )
    monitor.log.close()

    targets = [("sqlite (WAL)", f"sqlite:///{home}/writer.db")]
    scratch = None
    if args.postgres:
        import psycopg

        scratch = f"modelyard_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{scratch}"')
        targets.append(("postgresql", f"{args.postgres.rsplit('/', 1)[0]}/{scratch}"))
    try:
        for name, url in targets:
            # Nothing is written until flush(): the timing covers exactly the writes.
            log = PredictionLogger(url, flush_interval_s=3600, capacity=args.rows)
            log.start()
            per_call = 32
            for _ in range(args.rows // per_call):
                log.record(
                    "m",
                    "1",
                    ["req"] * per_call,
                    {
                        "mean_intensity": rng.random(per_call),
                        "std_intensity": rng.random(per_call),
                        "ink_fraction": rng.random(per_call),
                    },
                    rng.normal(size=(per_call, 4)),
                    ["3"] * per_call,
                    rng.random(per_call),
                    0.002,
                )
            started = time.perf_counter()
            log.flush(120)
            seconds = time.perf_counter() - started
            log.close()
            rate = log.written / seconds
            print(f"writer, {name}: {log.written} rows in {seconds:.2f}s = {rate:,.0f} rows/s")
    finally:
        if scratch:
            with psycopg.connect(args.postgres, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()

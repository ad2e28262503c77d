"""CPU per v2 JSON request decode, orjson path against the pysimdjson path, side by side.

    nice -n 10 .venv/bin/python benchmarks/frontier/v2_decode.py [--rounds 15] [--out FILE]

A body is what ``modelyard bench`` sends an MNIST model (``tensor_payload``: FP32
standard normal, seed 0, flat ``data``), for 1, 8 and 32 images a request, and the
same tensor with ``data`` nested as ``[n, 1, 28, 28]`` lists (the protocol allows both;
the fast path takes flat data only, so nested bodies show what a declined body costs).
Each case times ``decode_request(body, fast=False)`` and ``decode_request(body)``
alternately, ``--rounds`` times, in thread CPU over enough calls for ~20 ms; the
median and the spread (min-max) per case are printed and written as JSON lines.
Both paths are checked to give the same array first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from modelyard.bench.payloads import tensor_payload
from modelyard.serve.codecs import v2, v2_simd

SHAPE = (1, 28, 28)


def _bodies(batch: int) -> dict[str, bytes]:
    flat = tensor_payload("v2", SHAPE, batch=batch).body
    payload = orjson.loads(flat)
    spec = payload["inputs"][0]
    spec["data"] = np.asarray(spec["data"], dtype=np.float32).reshape(spec["shape"]).tolist()
    return {"flat": flat, "nested": orjson.dumps(payload)}


def _cpu_us(body: bytes, fast: bool, calls: int) -> float:
    began = time.thread_time_ns()
    for _ in range(calls):
        v2.decode_request(body, fast=fast)
    return (time.thread_time_ns() - began) / calls / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not v2_simd.available():
        raise SystemExit("pysimdjson is not installed: pip install pysimdjson")
    rows: list[dict[str, Any]] = []
    for batch in (1, 8, 32):
        for layout, body in _bodies(batch).items():
            slow = v2.decode_request(body, fast=False).inputs["input"]
            quick = v2.decode_request(body).inputs["input"]
            assert slow.dtype == quick.dtype and np.array_equal(slow, quick)
            calls = max(5, 500 // batch)
            times: dict[str, list[float]] = {"orjson": [], "simdjson": []}
            for _ in range(args.rounds):
                times["orjson"].append(_cpu_us(body, False, calls))
                times["simdjson"].append(_cpu_us(body, True, calls))
            row: dict[str, Any] = {"batch": batch, "layout": layout, "bytes": len(body)}
            for path, values in times.items():
                row[f"{path}_us"] = statistics.median(values)
                row[f"{path}_range_us"] = [min(values), max(values)]
            row["ratio"] = row["orjson_us"] / row["simdjson_us"]
            rows.append(row)
            print(
                f"batch {batch:2d} {layout:6s} {len(body) / 1e3:6.1f} KB: "
                f"orjson {row['orjson_us']:7.1f} µs ({min(times['orjson']):.1f}-"
                f"{max(times['orjson']):.1f}), simdjson {row['simdjson_us']:7.1f} µs "
                f"({min(times['simdjson']):.1f}-{max(times['simdjson']):.1f}), "
                f"saved {row['orjson_us'] - row['simdjson_us']:6.1f} µs ({row['ratio']:.2f}x)",
                flush=True,
            )
    if args.out:
        with args.out.open("a") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

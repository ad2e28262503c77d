"""Serve bundles one after another, order rotated each round, and bench each at c=32.

    .venv/bin/python benchmarks/frontier/ab_serve.py --arm plain=<bundle> \\
        --arm distilled=<bundle> --arm plain-copy=<copy of the plain folder> \\
        --rounds 6 --duration 6s --out results/<name>.jsonl

``--bench-arg=--binary`` passes that option to every arm's ``modelyard bench`` (here:
v2 binary tensors instead of JSON bodies).

``--log-seed FILE`` (with ``--fresh-home``) starts every serve with a copy of that
SQLite prediction log, so each writes into a log that already holds rows.

``--src NAME=DIR`` serves arm NAME with ``PYTHONPATH=DIR``: the ``src`` folder of
another checkout (``git worktree add /tmp/base HEAD``), so one run compares the
server's code at two commits on the same bundle (the load generator stays this
checkout's).

One JSON row per serve (``serving.serve_and_bench``), appended to ``--out`` as soon
as it exists, with what the server did meanwhile: its batches by trigger (from
``/metrics``) and the size of its answer to one v2 request like the bench's. An arm
that is a byte-identical copy of another (an A/A pair) shows how far two runs of the
same model drift apart on this machine at this load: a ratio between other arms is
only a property of the models when it falls outside that spread.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.monitor.logstore import LOG_FILE
from serving import serve_and_bench

_TRIGGERS = "modelyard_batch_trigger_total{"
_MODEL_INFO = "modelyard_model_info{"


def _v2_body() -> bytes:
    """One v2 JSON request of what ``modelyard bench`` sends an image model (seed 0)."""
    data = np.random.default_rng(0).standard_normal((1, 1, 28, 28), dtype=np.float32)
    tensor = {"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32"}
    return json.dumps({"inputs": [{**tensor, "data": data.ravel().tolist()}]}).encode()


def probe(url: str) -> dict[str, Any]:
    """The server's batches by trigger so far, and its answer's size to one request."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    triggers, model = {}, ""
    for line in text.splitlines():
        if line.startswith(_TRIGGERS):
            labels, value = line.rsplit(" ", 1)
            triggers[labels.split('trigger="')[1].split('"')[0]] = float(value)
        elif line.startswith(_MODEL_INFO) and line.endswith(" 1.0"):
            model = line.split('model="')[1].split('"')[0]
    request = urllib.request.Request(
        f"{url}/v2/models/{model}/infer",
        data=_v2_body(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        size = len(answer.read())
    return {"batch_triggers": triggers, "response_bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", action="append", required=True, help="name=bundle folder")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", default="8s", help="measured time per bench")
    parser.add_argument("--settings", default="", help="serve overrides, space-separated")
    parser.add_argument(
        "--fresh-home",
        type=Path,
        help="give every serve its own MODELYARD_HOME under this folder (a fresh "
        "prediction log each time); default: the caller's MODELYARD_HOME",
    )
    parser.add_argument(
        "--log-seed",
        type=Path,
        help="with --fresh-home: a SQLite prediction log copied into every serve's home "
        "first (a server whose log already holds rows, as a long-running one's does)",
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, appended")
    parser.add_argument(
        "--bench-arg",
        action="append",
        default=[],
        help="an extra `modelyard bench` option for every arm (repeat it; e.g. "
        "--bench-arg=--binary sends v2 binary tensors instead of JSON)",
    )
    parser.add_argument(
        "--src",
        action="append",
        default=[],
        help="name=folder: serve that arm with PYTHONPATH=folder (another checkout's src)",
    )
    args = parser.parse_args()
    arms = [arm.split("=", 1) for arm in args.arm]
    sources = dict(source.split("=", 1) for source in args.src)
    unknown = set(sources) - {name for name, _ in arms}
    if unknown:
        parser.error(f"--src names no arm: {sorted(unknown)}")
    if args.log_seed is not None and args.fresh_home is None:
        parser.error("--log-seed needs --fresh-home")
    for round_ in range(args.rounds):
        shift = round_ % len(arms)
        for name, bundle in arms[shift:] + arms[:shift]:
            env = dict(os.environ)
            if args.fresh_home is not None:
                home = args.fresh_home / f"{name}-{round_}"
                home.mkdir(parents=True, exist_ok=True)
                env["MODELYARD_HOME"] = str(home)
                if args.log_seed is not None:
                    shutil.copyfile(args.log_seed, home / LOG_FILE)
            source = sources.get(name)
            row = serve_and_bench(
                bundle,
                env,
                args.duration,
                32,
                args.settings.split(),
                probe=probe,
                bench_args=args.bench_arg,
                server_env=None if source is None else {"PYTHONPATH": source},
            )
            row = {
                "arm": name,
                "src": source,
                "round": round_,
                "bench_args": args.bench_arg,
                "utc": time.strftime("%H:%M:%S", time.gmtime()),
                **row,
            }
            with args.out.open("a") as out:
                out.write(json.dumps(row) + "\n")
            print(
                f"round {round_} {name}: {row['images_per_s']:.0f} img/s, "
                f"{row['server_cpu_us_per_request']:.0f} us server CPU/request, "
                f"load {row['load_before']:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

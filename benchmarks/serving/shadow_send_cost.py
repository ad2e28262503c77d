"""What one message to the shadow's process costs the server (issue 16): the CPU of the
thread that runs ``ShadowProcess._run`` (join the queued requests' inputs, send them
down the pipe: the event loop since 2026-12-07, a thread of the shadow's before), per
message of 128 one-image requests, for the digits model's 8x8
inputs and MNIST's 28x28; a separate process drains the pipe as the shadow's would.

    .venv/bin/python benchmarks/serving/shadow_send_cost.py [--src OTHER/src ...] \
        [--messages 400] [--rounds 3]

Each ``--src`` is measured too, in a fresh interpreter with that tree first on
``PYTHONPATH`` (e.g. a ``git worktree`` of the commit before a change), alternating
with this tree's round by round. Prints thread CPU per message and per request.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

DRAIN = """
import sys
from multiprocessing.connection import Connection
inbox = Connection(int(sys.argv[1]), writable=False)
while True:
    try:
        inbox.recv_bytes()
    except EOFError:
        break
"""

MEASURE = """
import asyncio, json, os, subprocess, sys, time
from multiprocessing.connection import Connection
from types import SimpleNamespace
import numpy as np
from modelyard.modality import Batch
from modelyard.serve.metrics import ServerMetrics
from modelyard.serve.monitoring import ServingMonitor
from modelyard.serve.settings import ServeSettings
from modelyard.serve.shadow import ShadowWork
from modelyard.serve.shadow_child import ShadowModel
from modelyard.serve.shadow_process import ShadowProcess
import modelyard.serve.shadow_process as shadow_process

drain, side, messages = sys.argv[1], tuple(int(v) for v in sys.argv[2].split(",")), int(sys.argv[3])
spec = {"kind": "image", "height": side[0], "width": side[1], "channels": 1, "mean": 0.0, "std": 1.0}
settings = ServeSettings(model="models:/m@production", shadow="staging", log_predictions=False)
metrics = ServerMetrics()
shadow = ShadowProcess(settings, metrics, ServingMonitor(settings, metrics))
shadow.model = ShadowModel("m", "2", "image", spec)
read_end, write_end = os.pipe()
getattr(shadow_process, "_widen", lambda fd: None)(write_end)  # as the server's start() does
child = subprocess.Popen([sys.executable, "-c", drain, str(read_end)], pass_fds=(read_end,))
os.close(read_end)
main = SimpleNamespace(spec=spec)
rng = np.random.default_rng(0)

def batch(n):
    items = []
    for i in range(n):
        rows = rng.random((1, side[0], side[1], 1), dtype=np.float32)
        items.append((ShadowWork(f"{i:032x}", main, Batch(rows, rows), lambda m: None), None))
    return items

batches = [batch(128) for _ in range(messages + 20)]

async def on_the_loop():  # since 2026-12-07 the event loop writes, without blocking
    reports, unused = os.pipe()
    shadow.attach(asyncio.get_running_loop(), write_end, reports)
    spent = 0.0
    for n, items in enumerate(batches):
        started = time.thread_time()
        shadow._run(items)
        while shadow._writer.waiting:  # the pipe drains: the loop waits in epoll
            await asyncio.sleep(0.0005)
        spent += time.thread_time() - started if n >= 20 else 0.0  # 20 to warm
    shadow._writer.close()
    os.close(unused)
    return spent

def in_a_thread():  # before: a thread of the shadow's sent, blocking on a full pipe
    shadow._outbox = Connection(write_end, readable=False)
    for items in batches[:20]:  # warm
        shadow._run(items)
    started = time.thread_time()
    for items in batches[20:]:
        shadow._run(items)
    spent = time.thread_time() - started
    shadow._outbox.close()
    return spent

spent = asyncio.run(on_the_loop()) if hasattr(shadow, "attach") else in_a_thread()
child.wait()
print(json.dumps({"us_per_message": 1e6 * spent / messages, "us_per_request": 1e6 * spent / messages / 128}))
"""


def _measure(src: str, side: str, messages: int) -> dict[str, float]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, DRAIN, side, str(messages)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", action="append", default=[], help="Another source tree.")
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    flags = sorted(set(re.findall(r"\bavx\S*", Path("/proc/cpuinfo").read_text())))
    print("cpu flags:", " ".join(flags), "| load:", Path("/proc/loadavg").read_text().strip())
    trees = ["", *args.src]
    for side in ("8,8", "28,28"):
        for round_ in range(args.rounds):
            for tree in trees if round_ % 2 == 0 else trees[::-1]:
                result = _measure(tree, side, args.messages)
                print(
                    f"{side:>5} round {round_} {tree or 'this tree':<24} "
                    f"{result['us_per_message']:8.1f} us/message "
                    f"{result['us_per_request']:6.2f} us/request",
                    flush=True,
                )
    print("finished, load:", Path("/proc/loadavg").read_text().strip(), time.strftime("%H:%M UTC"))


if __name__ == "__main__":
    main()

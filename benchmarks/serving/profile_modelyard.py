"""Profile `modelyard serve` under the c=32 load with py-spy and summarise where time goes.

    .venv/bin/python benchmarks/serving/profile_modelyard.py BUNDLE [--py-spy /tmp/peers/pyspy/bin/py-spy]

py-spy lives in its own venv (python3.11 -m venv /tmp/peers/pyspy && /tmp/peers/pyspy/bin/pip
install py-spy). Samples all threads (--idle off, so only on-CPU / GIL-holding time
counts, plus native frames for ONNX Runtime), writes collapsed stacks to
/tmp/peers/modelyard.profile.txt and prints the top self and inclusive costs.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from run_peers import MODELYARD, free_port, post_ok, v2_body


def summarise(path: Path, top: int = 25) -> str:
    self_cost: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        self_cost[frames[-1]] += n
        for frame in set(frames[1:]):
            incl[frame] += n
    out = [f"samples: {total}", "by thread:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in threads.most_common(6)]
    out.append("self (leaf frame):")
    out += [f"  {n / total:6.1%}  {name}" for name, n in self_cost.most_common(top)]
    out.append("inclusive:")
    out += [f"  {n / total:6.1%}  {name}" for name, n in incl.most_common(top + 15)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle")
    parser.add_argument("--model-name", default="mnist")
    parser.add_argument("--py-spy", default="/tmp/peers/pyspy/bin/py-spy")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--out", default="/tmp/peers/modelyard.profile.txt")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [str(MODELYARD), "serve", args.bundle, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    path = f"/v2/models/{args.model_name}/infer"
    try:
        while not post_ok(url + path, v2_body()):
            time.sleep(0.05)
        load = subprocess.Popen(
            [
                str(MODELYARD),
                "bench",
                url,
                "--model",
                args.model_name,
                "-c",
                "32",
                "--duration",
                f"{args.seconds + 6}s",
                "--shape",
                "1,28,28",
                "--no-ceiling",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(3)
        subprocess.run(
            [
                args.py_spy,
                "record",
                "--pid",
                str(server.pid),
                "--duration",
                str(args.seconds),
                "--rate",
                "250",
                "--threads",
                "--format",
                "raw",
                "--output",
                args.out,
                "--nonblocking",
            ],
            check=True,
            capture_output=True,
        )
        print(load.communicate()[0])
        print(summarise(Path(args.out)))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)


if __name__ == "__main__":
    main()

"""How training speed degrades when another process keeps one core busy (issue 17).

Times optimizer steps of the mnist5k CNN (the quickstart's model, batch 64, 28x28) with
torch intra-op threads = every core, = 1, and adaptive (``train.threads=0``), on a quiet
machine and while a busy-loop process spins on one core. Settings alternate in one
run so the ratios compare like with like.
Run: ``.venv/bin/python benchmarks/training/shared_cpu.py [--steps 30]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from multiprocessing.synchronize import Event

import torch
from torch import nn

from modelyard.train.threads import AdaptiveThreads, sample, usable_cores


def _spin(stop: Event) -> None:
    while not stop.is_set():
        pass


def _model() -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        *block(1, 32),
        *block(32, 64),
        *block(64, 128),
        nn.Flatten(),
        nn.Linear(128 * 3 * 3, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def _steps_per_s(threads: int, steps: int) -> float:
    """Optimizer steps per second; ``threads=0`` lets AdaptiveThreads pick, as training does."""
    adaptive = AdaptiveThreads(every_s=0.5) if threads == 0 else None
    torch.set_num_threads(threads or usable_cores())
    torch.manual_seed(0)
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    if adaptive:
        adaptive.last = sample()
    start = time.perf_counter()
    for _ in range(steps):
        if adaptive:
            adaptive._check()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for busy in (False, True):
            stop = mp.Event()
            spinner = mp.Process(target=_spin, args=(stop,)) if busy else None
            if spinner:
                spinner.start()
                time.sleep(0.5)
            for threads in (cores, 1, 0):
                name = "adaptive" if threads == 0 else f"threads={threads}"
                key = f"{'busy' if busy else 'quiet'} {name}"
                results.setdefault(key, []).append(_steps_per_s(threads, args.steps))
            if spinner:
                stop.set()
                spinner.join()
    summary = {k: round(sorted(v)[len(v) // 2], 2) for k, v in results.items()}
    print(json.dumps({"cores": cores, "load": os.getloadavg(), "steps_per_s": summary}, indent=1))


if __name__ == "__main__":
    main()

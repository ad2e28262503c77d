"""What the optional augmentations add to a training step of the default mnist5k model.

    nice -n 10 .venv/bin/python benchmarks/frontier/augment_cost.py --rounds 6 --steps 40 \\
        [--json benchmarks/frontier/results/augment-cost.json]

One process, one thread (``train.threads=1``, as the recipe searches), batch 64 of
28x28 images, ``model=cnn_fast``: a step is what ``Classifier.training_step`` does
(augmentation, forward, cross-entropy) plus backward and an AdamW step. The arms
(today's affine augmentation alone, + erasing, + elastic, + both) are alternated
round by round in a rotated order, so a shared machine's load falls on all of them
alike. A step's cost is the CPU time this process spends on it (``process_time``, one
thread): on a shared machine the wall time mostly measures waiting for a core. The
median over rounds of each arm's mean step CPU time is reported, and its ratio to
the affine arm. Whole fits on a loaded machine vary 2-4x with the load of
the moment, so this is the side-by-side measure of the per-epoch cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from modelyard.config import compose_config
from modelyard.models import build_model
from modelyard.train.module import Classifier

ARMS = {
    "affine (today)": [],
    "+ erasing 0.5": ["train.augment_erasing=0.5"],
    "+ elastic 16/4": ["train.augment_elastic=16"],
    "+ both": ["train.augment_erasing=0.5", "train.augment_elastic=16"],
}


def _module(overrides: list[str]) -> Classifier:
    cfg = compose_config(["task=mnist5k", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg.model, (1, 28, 28), 10)
    return Classifier(model, cfg.train, augment_fill=-0.42)


def _time_steps(module: Classifier, batch: tuple[torch.Tensor, torch.Tensor], steps: int) -> float:
    optimiser = torch.optim.AdamW(module.parameters(), lr=1e-3)
    module.log = lambda *a, **k: None  # type: ignore[method-assign]  # no Trainer attached
    started = time.process_time()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = module.training_step(batch, 0)
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
    return (time.process_time() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=40, help="training steps per arm a round")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    batch = (torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)))
    modules = {name: _module(overrides) for name, overrides in ARMS.items()}
    for module in modules.values():  # warm-up
        _time_steps(module, batch, 5)
    times: dict[str, list[float]] = {name: [] for name in ARMS}
    loads = [os.getloadavg()[0]]
    names = list(ARMS)
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            times[name].append(_time_steps(modules[name], batch, args.steps))
        loads.append(os.getloadavg()[0])
    base = statistics.median(times[names[0]])
    rows = []
    for name in names:
        med = statistics.median(times[name])
        ratios = [t / b for t, b in zip(times[name], times[names[0]], strict=True)]
        rows.append(
            {
                "arm": name,
                "median_step_cpu_ms": med * 1e3,
                "ratio": med / base,
                "ratio_per_round": ratios,
            }
        )
        print(
            f"{name:16} {med * 1e3:6.2f} CPU ms/step  x{med / base:.3f}  "
            f"per round {' '.join(f'{r:.2f}' for r in ratios)}"
        )
    print(f"1-minute load average {min(loads):.2f}-{max(loads):.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load": loads}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Where Lightning's per-step overhead goes, and which knob removes how much of it.

Companion to ``bench_lightning_overhead.py`` (same data, seeds, Trainer and
interleaved plain loop; run it from the same folder). Each variant below is fitted
with its epochs interleaved with a plain PyTorch loop, and the report gives the
lightning / plain ratio and the extra milliseconds per training step:

* ``as-is``        - ``Classifier`` unchanged, bare Trainer (the main benchmark);
* ``no-log``       - no ``self.log`` at all: the floor, Lightning's loop machinery only;
* ``batch-size``   - ``self.log(..., batch_size=n)``: skips batch-size inference;
* ``epoch-log``    - loss and hits summed in the step, ``self.log`` once per epoch
  (``on_train_epoch_end`` / ``on_validation_epoch_end``): same logged values;
* ``checkpointing``- ``as-is`` plus run.py's ``ModelCheckpoint`` and ``EarlyStopping``;
* ``progress-bar`` - ``as-is`` plus the progress bar (run.py's default).

The fixed per-step cost matters for small models: use a small one to see it::

    .venv/bin/python benchmarks/training/bench_lightning_overhead_knobs.py --task digits
    .venv/bin/python benchmarks/training/bench_lightning_overhead_knobs.py \\
        --overrides model=cnn_small
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from bench_lightning_overhead import (
    Data,
    PlainLoop,
    load_data,
    machine,
    make_loader,
    quiet,
    run_lightning,
)

from modelyard.config import Config, compose_config
from modelyard.train.augment import random_affine
from modelyard.train.module import Classifier

Batch = tuple[torch.Tensor, torch.Tensor]


def _forward(module: Classifier, batch: Batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and loss exactly as ``Classifier._step`` computes them."""
    x, y = batch
    if stage == "train" and module.cfg.augment:
        x = random_affine(x, fill=module.augment_fill)
    logits = module(x)
    smoothing = module.cfg.label_smoothing if stage == "train" else 0.0
    return logits, F.cross_entropy(logits, y, label_smoothing=smoothing)


class NoLog(Classifier):
    """``Classifier`` without any ``self.log``: Lightning's loop machinery alone."""

    def _step(self, batch: Batch, stage: str) -> torch.Tensor:
        return _forward(self, batch, stage)[1]


class BatchSizeLog(Classifier):
    """``Classifier`` passing ``batch_size`` to ``self.log`` (no batch-size inference)."""

    def _step(self, batch: Batch, stage: str) -> torch.Tensor:
        logits, loss = _forward(self, batch, stage)
        y = batch[1]
        acc = (logits.argmax(dim=1) == y).float().mean()
        n = int(y.shape[0])
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        self.log(f"{stage}_acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        return loss


class EpochLog(Classifier):
    """``Classifier`` summing loss and hits per step, logging the means once per epoch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sums: dict[str, torch.Tensor] = {}

    def _step(self, batch: Batch, stage: str) -> torch.Tensor:
        logits, loss = _forward(self, batch, stage)
        y = batch[1]
        step = torch.stack(
            [
                loss.detach() * y.shape[0],
                (logits.detach().argmax(dim=1) == y).sum().to(loss.dtype),
                torch.tensor(float(y.shape[0]), device=loss.device),
            ]
        )
        self._sums[stage] = self._sums[stage] + step if stage in self._sums else step
        return loss

    def _flush(self, stage: str) -> None:
        sums = self._sums.pop(stage, None)
        if sums is not None:
            self.log(f"{stage}_loss", sums[0] / sums[2], prog_bar=True)
            self.log(f"{stage}_acc", sums[1] / sums[2], prog_bar=True)

    def on_train_epoch_end(self) -> None:
        self._flush("train")

    def on_validation_epoch_end(self) -> None:
        self._flush("val")


VARIANTS: dict[str, tuple[type[Classifier], bool, bool]] = {
    # name: (module class, checkpointing, progress bar)
    "as-is": (Classifier, False, False),
    "no-log": (NoLog, False, False),
    "batch-size": (BatchSizeLog, False, False),
    "epoch-log": (EpochLog, False, False),
    "checkpointing": (Classifier, True, False),
    "progress-bar": (Classifier, False, True),
}


@dataclass
class VariantResult:
    """Median measured epochs of one Lightning variant and of its plain partner."""

    variant: str
    lightning_epoch_s: float
    plain_epoch_s: float
    ratio: float
    per_step_overhead_ms: float
    val_acc: float


def measure(name: str, cfg: Config, data: Data, threads: int, repeats: int) -> VariantResult:
    """Interleave ``repeats`` fits of one variant with the plain loop."""
    module_cls, checkpointing, progress_bar = VARIANTS[name]
    lightning: list[float] = []
    plain: list[float] = []
    val_acc = float("nan")
    for repeat in range(repeats):
        loop = PlainLoop(cfg, data, threads)
        result = run_lightning(
            cfg,
            data,
            threads,
            repeat,
            checkpointing,
            progress_bar,
            plain=loop,
            plain_first=repeat % 2 == 1,
            module_cls=module_cls,
        )
        lightning += result.measured
        plain += loop.result(repeat).measured
        val_acc = result.val_acc
    l_med, p_med = statistics.median(lightning), statistics.median(plain)
    steps = len(make_loader(data.train, cfg.train, shuffle=True))
    return VariantResult(
        variant=name,
        lightning_epoch_s=l_med,
        plain_epoch_s=p_med,
        ratio=l_med / p_med,
        per_step_overhead_ms=(l_med - p_med) / steps * 1000,
        val_acc=val_acc,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="mnist5k", help="config task group; default mnist5k")
    parser.add_argument("--overrides", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit; default 4")
    parser.add_argument("--repeats", type=int, default=3, help="fits per variant; default 3")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    parser.add_argument(
        "--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first is warm-up)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every requested variant and print one line each."""
    args = parse_args(argv)
    quiet()
    overrides = [f"task={args.task}", *args.overrides, f"train.max_epochs={args.epochs}"]
    cfg = compose_config(overrides)
    threads = args.threads or torch.get_num_threads()
    data = load_data(cfg)
    info = machine()
    print(f"{overrides} threads={threads} torch {info['torch']} lightning {info['lightning']}")
    print(f"{'variant':<14} {'L ms/ep':>9} {'plain ms/ep':>12} {'L/plain':>8} {'+ms/step':>9}")
    results = []
    for name in args.variants:
        r = measure(name, cfg, data, threads, args.repeats)
        results.append(r)
        print(
            f"{r.variant:<14} {r.lightning_epoch_s * 1000:>9.1f} {r.plain_epoch_s * 1000:>12.1f} "
            f"{r.ratio:>8.3f} {r.per_step_overhead_ms:>+9.2f}",
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": info,
            "overrides": overrides,
            "threads": threads,
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

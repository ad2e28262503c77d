"""Lightning's per-epoch overhead against a plain PyTorch loop of the same model and data.

Requirement under test: *Lightning's overhead per epoch is within 15% of a plain
PyTorch loop of the same model and data.*

Both sides get the same composed config, seed, preprocessed ``TensorDataset``
(``split_tensors``), batch size, optimizer and schedule (mirroring
``Classifier.configure_optimizers``: AdamW + OneCycleLR stepped per batch by
default), loss (cross-entropy with ``train.label_smoothing`` in training only),
augmentation (``random_affine`` when ``train.augment``), determinism flag and
``torch`` thread count. Every epoch trains and then validates. Each side
keeps its own torch RNG stream, so both train exactly the same thing and end with
the same validation metrics (the report checks it).

* **lightning** - ``Classifier`` fitted by an ``L.Trainer`` configured like
  ``modelyard.train.run._trainer`` but *bare*: no MLflow callback, no logger, no
  progress bar, no model summary, no sanity check and checkpointing disabled.
  ``--checkpointing`` adds run.py's ``ModelCheckpoint`` (best + last, into a
  temporary folder) and ``EarlyStopping``; ``--progress-bar`` turns the bar on.
* **plain** - a hand-written loop: ``model.train()``, forward, cross-entropy,
  backward, ``optimizer.step()``, ``scheduler.step()``; then validation under
  ``torch.no_grad()`` with ``model.eval()``. It accumulates the same epoch loss and
  accuracy that ``Classifier`` logs, so both sides compute the same things.

An epoch is timed with ``time.perf_counter`` (and ``time.process_time``) from the
start of one epoch to the start of the next (the last to the end of training),
so Lightning's between-epoch work counts against it. The first epoch of each side
in every repeat is warm-up and left out.

``--mode interleaved`` (default) alternates single epochs: a Lightning fit runs
and, at each epoch boundary, a callback stops Lightning's clock, runs one epoch of
the plain loop, and restarts it; odd repeats put the plain epoch first. Other
processes on a small shared machine then slow both sides of an epoch pair alike.
``--mode sequential`` runs each side's whole fit alone, alternating which goes
first per repeat.

The report gives, for each side, the median of all measured epochs and the ratio
lightning / plain (the figure the requirement is judged on), plus the median of
per-pair ratios (epoch k of one side against epoch k of the other), the ratio of
the fastest epochs and of CPU seconds, and a warning when many epochs of a side
ran well above that side's fastest (a busy machine).

Run from the repository root::

    .venv/bin/python benchmarks/training/bench_lightning_overhead.py
    .venv/bin/python benchmarks/training/bench_lightning_overhead.py --epochs 6 \\
        --repeats 3 --json /tmp/overhead.json --overrides train.batch_size=128
    .venv/bin/python benchmarks/training/bench_lightning_overhead.py --task digits
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from modelyard.config import Config, TrainConfig, compose_config
from modelyard.data import image_spec, load_dataset
from modelyard.models import build_model
from modelyard.train.augment import random_affine
from modelyard.train.datamodule import split_tensors
from modelyard.train.module import Classifier

TARGET_OVERHEAD = 0.15
"""The product requirement: Lightning at most 15% slower per epoch than plain."""

SLOW_EPOCH_PCT = 15.0
"""An epoch this much slower than its side's fastest counts as disturbed."""

NOISY_SHARE = 0.25
"""More than this share of disturbed epochs on a side flags the run as noisy (a lone
outlier does not move a median, a quarter of the epochs can)."""

SIDES = ("lightning", "plain")
MODES = ("interleaved", "sequential")


@dataclass(frozen=True)
class Data:
    """The preprocessed splits both sides train and validate on."""

    train: TensorDataset
    val: TensorDataset
    num_classes: int
    shape: tuple[int, int, int]
    augment_fill: float


@dataclass
class RunResult:
    """One side's run: per-epoch wall and CPU times and the metrics it ended with."""

    side: str
    repeat: int
    epoch_seconds: list[float]
    """Wall seconds of every epoch, warm-up (the first) included."""
    epoch_cpu_seconds: list[float]
    """Process CPU seconds (all threads) of every epoch, warm-up included."""
    fit_seconds: float
    """Wall seconds of the whole fit, setup (Trainer / optimizer creation) included."""
    steps_per_epoch: int
    threads: int
    """``torch.get_num_threads()`` seen during the first epoch."""
    val_acc: float
    val_loss: float
    train_loss: float
    measured: list[float] = field(init=False)
    """``epoch_seconds`` without the warm-up epoch."""
    measured_cpu: list[float] = field(init=False)
    """``epoch_cpu_seconds`` without the warm-up epoch."""

    def __post_init__(self) -> None:
        self.measured = self.epoch_seconds[1:]
        self.measured_cpu = self.epoch_cpu_seconds[1:]


@dataclass
class Summary:
    """Medians over every measured epoch of every repeat, and their ratios."""

    lightning_epoch_s: float
    plain_epoch_s: float
    ratio: float
    """lightning / plain median per-epoch wall seconds: the requirement's figure."""
    overhead_pct: float
    per_step_overhead_ms: float
    paired_ratio: float
    """Median over epoch pairs (same repeat, same epoch index) of lightning / plain."""
    repeat_ratios: list[float]
    """lightning / plain median per-epoch seconds within each repeat."""
    lightning_min_epoch_s: float
    plain_min_epoch_s: float
    min_ratio: float
    """lightning / plain fastest measured epoch (noise only ever adds time)."""
    lightning_cpu_epoch_s: float
    plain_cpu_epoch_s: float
    cpu_ratio: float
    """lightning / plain median per-epoch process CPU seconds."""
    spread_pct: dict[str, float]
    """Per side: (max - min) / min of the measured epochs, in percent."""
    slow_share: dict[str, float]
    """Per side: share of measured epochs over ``SLOW_EPOCH_PCT`` above the fastest."""
    lightning_fit_s: float
    plain_fit_s: float
    same_metrics: bool
    """Every run ended with the same val accuracy and loss (to float32 rounding)."""
    within_target: bool


# -- setup -----------------------------------------------------------------------------


def quiet() -> None:
    """Silence Lightning's informational logs and its few-workers warning."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def load_data(cfg: Config) -> Data:
    """Load and preprocess the train and val splits once, as ``ImageDataModule`` does."""
    dataset = load_dataset(cfg.data)
    spec = image_spec(cfg.data)
    return Data(
        train=split_tensors(dataset.split("train"), spec),
        val=split_tensors(dataset.split("val"), spec),
        num_classes=len(dataset.class_names),
        shape=spec.shape,
        # The same background value run.py gives Classifier for augmentation.
        augment_fill=(0.0 - spec.mean) / spec.std,
    )


def make_loader(dataset: TensorDataset, cfg: TrainConfig, shuffle: bool) -> DataLoader:
    """A DataLoader built exactly like ``ImageDataModule._loader``."""
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=shuffle,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
    )


def plain_device(cfg: TrainConfig) -> torch.device:
    """The device the plain loop uses for ``train.accelerator``."""
    if cfg.accelerator == "gpu" or (cfg.accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def prepare(cfg: Config, threads: int) -> None:
    """Same process-wide state before either side: threads, determinism, seed."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(cfg.train.deterministic)
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)


def stamp() -> tuple[float, float]:
    """Wall-clock and process CPU time now."""
    return time.perf_counter(), time.process_time()


def synchronize(device: torch.device) -> None:
    """Wait for queued device work so a timestamp covers it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class RngState:
    """A snapshot of torch's global random generators (CPU, and CUDA when used)."""

    cpu: torch.Tensor
    cuda: list[torch.Tensor] | None

    @classmethod
    def capture(cls, device: torch.device) -> RngState:
        """The generators' state now."""
        cuda = torch.cuda.get_rng_state_all() if device.type == "cuda" else None
        return cls(torch.get_rng_state(), cuda)

    def restore(self) -> None:
        """Put the generators back to this snapshot."""
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


# -- plain side --------------------------------------------------------------------------


def make_optimizer(
    model: nn.Module, cfg: TrainConfig, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, Any, str]:
    """Optimizer, scheduler and when it steps, as ``Classifier.configure_optimizers``.

    The interval is ``step`` (every batch), ``epoch``, ``plateau`` (every epoch, on
    the validation loss) or ``none``.
    """
    optimizer_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler: Any
    if cfg.scheduler == "none":
        return optimizer, None, "none"
    if cfg.scheduler == "onecycle":
        # Lightning's estimated_stepping_batches: max_epochs x batches per epoch.
        total = cfg.max_epochs * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=max(total, 1)
        )
        return optimizer, scheduler, "step"
    if cfg.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=0.5, patience=2
        )
        return optimizer, scheduler, "plateau"
    if cfg.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(cfg.max_epochs, 1)
        )
    else:
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=max(cfg.max_epochs // 3, 1), gamma=0.1
        )
    return optimizer, scheduler, "epoch"


def autocast(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The autocast Lightning's ``precision`` implies (only 32 and bf16-mixed mirrored)."""
    if cfg.precision == "32":
        return contextlib.nullcontext()
    if cfg.precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise SystemExit(f"train.precision={cfg.precision} is not mirrored by the plain loop")


def batches(loader: DataLoader, device: torch.device) -> Iterator[tuple[torch.Tensor, ...]]:
    """The loader's batches moved to ``device``."""
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


class PlainLoop:
    """A hand-written PyTorch train + validate loop, advanced one epoch at a time.

    It keeps its own copy of torch's RNG state and swaps it in only while an epoch
    runs, so its epochs can be interleaved with a Lightning fit without either side
    changing the other's random stream (shuffling, augmentation, dropout).
    """

    def __init__(self, cfg: Config, data: Data, threads: int) -> None:
        prepare(cfg, threads)
        self.cfg = cfg.train
        self.augment_fill = data.augment_fill
        self.device = plain_device(cfg.train)
        start = time.perf_counter()
        self.model = build_model(cfg.model, data.shape, data.num_classes).to(self.device)
        self.train_loader = make_loader(data.train, cfg.train, shuffle=True)
        self.val_loader = make_loader(data.val, cfg.train, shuffle=False)
        self.optimizer, self.scheduler, self.interval = make_optimizer(
            self.model, cfg.train, len(self.train_loader)
        )
        self.setup_seconds = time.perf_counter() - start
        self.rng = RngState.capture(self.device)
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.threads = 0
        self.train_loss = self.val_loss = self.val_acc = float("nan")

    def epoch(self) -> None:
        """Train one epoch, validate, and record its wall and CPU seconds."""
        outside = RngState.capture(self.device)
        self.rng.restore()
        synchronize(self.device)
        start = stamp()
        self.threads = self.threads or torch.get_num_threads()
        self._train()
        self._validate()
        if self.interval == "plateau":
            self.scheduler.step(self.val_loss)
        synchronize(self.device)
        end = stamp()
        self.wall.append(end[0] - start[0])
        self.cpu.append(end[1] - start[1])
        self.rng = RngState.capture(self.device)
        outside.restore()

    def _train(self) -> None:
        cfg, device = self.cfg, self.device
        self.model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        count = 0
        for x, y in batches(self.train_loader, device):
            if cfg.augment:
                x = random_affine(x, fill=self.augment_fill)
            with autocast(cfg, device):
                logits = self.model(x)
                loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.interval == "step":
                self.scheduler.step()
            loss_sum += loss.detach() * y.shape[0]
            correct += (logits.detach().argmax(dim=1) == y).sum()
            count += y.shape[0]
        if self.interval == "epoch":
            self.scheduler.step()
        self.train_loss = float(loss_sum) / count

    def _validate(self) -> None:
        device = self.device
        self.model.eval()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        count = 0
        with torch.no_grad(), autocast(self.cfg, device):
            for x, y in batches(self.val_loader, device):
                logits = self.model(x)
                loss_sum += F.cross_entropy(logits, y) * y.shape[0]
                correct += (logits.argmax(dim=1) == y).sum()
                count += y.shape[0]
        self.val_loss, self.val_acc = float(loss_sum) / count, float(correct) / count

    def result(self, repeat: int) -> RunResult:
        """This loop's timings and final metrics."""
        return RunResult(
            side="plain",
            repeat=repeat,
            epoch_seconds=list(self.wall),
            epoch_cpu_seconds=list(self.cpu),
            fit_seconds=self.setup_seconds + sum(self.wall),
            steps_per_epoch=len(self.train_loader),
            threads=self.threads,
            val_acc=self.val_acc,
            val_loss=self.val_loss,
            train_loss=self.train_loss,
        )


def run_plain(cfg: Config, data: Data, threads: int, repeat: int) -> RunResult:
    """Train and validate with the plain loop alone, for ``train.max_epochs`` epochs."""
    loop = PlainLoop(cfg, data, threads)
    for _ in range(cfg.train.max_epochs):
        loop.epoch()
    return loop.result(repeat)


# -- Lightning side ----------------------------------------------------------------------


class EpochTimer(L.Callback):
    """Times Lightning's epochs; optionally runs a plain epoch at each epoch boundary.

    A boundary is the start of a training epoch or the end of training. There the
    open Lightning epoch (if any) is closed, the plain loop is brought level (one
    epoch behind Lightning, or level with the epoch about to start when
    ``plain_first``), and the next Lightning epoch is opened, so plain epochs never
    count towards Lightning's time.
    """

    def __init__(
        self, device: torch.device, plain: PlainLoop | None = None, plain_first: bool = False
    ) -> None:
        self.device = device
        self.plain = plain
        self.plain_first = plain_first
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.plain_seconds = 0.0
        self.threads = 0
        self._open: tuple[float, float] | None = None

    def _close(self) -> None:
        synchronize(self.device)
        end = stamp()
        if self._open is not None:
            self.wall.append(end[0] - self._open[0])
            self.cpu.append(end[1] - self._open[1])
            self._open = None

    def _catch_up(self, epochs: int) -> None:
        if self.plain is None:
            return
        start = time.perf_counter()
        while len(self.plain.wall) < epochs:
            self.plain.epoch()
        self.plain_seconds += time.perf_counter() - start

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close()
        epoch = len(self.wall)
        self._catch_up(epoch + 1 if self.plain_first else epoch)
        self.threads = self.threads or torch.get_num_threads()
        synchronize(self.device)
        self._open = stamp()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._close()
        self._catch_up(len(self.wall))


def run_lightning(
    cfg: Config,
    data: Data,
    threads: int,
    repeat: int,
    checkpointing: bool,
    progress_bar: bool,
    plain: PlainLoop | None = None,
    plain_first: bool = False,
    module_cls: type[Classifier] = Classifier,
) -> RunResult:
    """Fit ``Classifier`` with a Trainer configured like run.py's ``_trainer``.

    With ``plain``, that loop's epochs are interleaved with Lightning's (see
    :class:`EpochTimer`); its time is taken out of Lightning's figures.
    ``module_cls`` swaps in a ``Classifier`` subclass (the knobs benchmark).
    """
    prepare(cfg, threads)
    model = build_model(cfg.model, data.shape, data.num_classes)
    module = module_cls(model, cfg.train, augment_fill=data.augment_fill)
    train_loader = make_loader(data.train, cfg.train, shuffle=True)
    val_loader = make_loader(data.val, cfg.train, shuffle=False)
    timer = EpochTimer(plain_device(cfg.train), plain, plain_first)
    with tempfile.TemporaryDirectory(prefix="bench-lightning-") as folder:
        callbacks: list[L.Callback] = [timer]
        if checkpointing:
            callbacks += [
                ModelCheckpoint(
                    dirpath=folder, filename="best", monitor="val_loss", mode="min", save_last=True
                ),
                EarlyStopping(
                    monitor="val_loss", mode="min", patience=cfg.train.early_stopping_patience
                ),
            ]
        start = time.perf_counter()
        trainer = L.Trainer(
            max_epochs=cfg.train.max_epochs,
            min_epochs=min(cfg.train.min_epochs, cfg.train.max_epochs),
            accelerator=cfg.train.accelerator,
            devices=cfg.train.devices,
            precision=cfg.train.precision,  # type: ignore[arg-type]
            deterministic=cfg.train.deterministic,
            callbacks=callbacks,
            logger=False,
            default_root_dir=folder,
            enable_checkpointing=checkpointing,
            enable_progress_bar=progress_bar,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
        fit_seconds = time.perf_counter() - start - timer.plain_seconds
    metrics = trainer.callback_metrics
    return RunResult(
        side="lightning",
        repeat=repeat,
        epoch_seconds=timer.wall,
        epoch_cpu_seconds=timer.cpu,
        fit_seconds=fit_seconds,
        steps_per_epoch=len(train_loader),
        threads=timer.threads,
        val_acc=float(metrics.get("val_acc", float("nan"))),
        val_loss=float(metrics.get("val_loss", float("nan"))),
        train_loss=float(metrics.get("train_loss", float("nan"))),
    )


def run_repeat(
    mode: str,
    cfg: Config,
    data: Data,
    threads: int,
    repeat: int,
    checkpointing: bool,
    progress_bar: bool,
) -> list[RunResult]:
    """One repeat of both sides; odd repeats put the plain side first."""
    plain_first = repeat % 2 == 1
    if mode == "interleaved":
        plain = PlainLoop(cfg, data, threads)
        lightning = run_lightning(
            cfg, data, threads, repeat, checkpointing, progress_bar, plain, plain_first
        )
        return [lightning, plain.result(repeat)]
    results = []
    for side in SIDES[::-1] if plain_first else SIDES:
        if side == "lightning":
            results.append(run_lightning(cfg, data, threads, repeat, checkpointing, progress_bar))
        else:
            results.append(run_plain(cfg, data, threads, repeat))
    return results


# -- reporting ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model or platform.processor(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "lightning": L.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_avg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def summarize(results: Sequence[RunResult]) -> Summary:
    """Medians of the measured epochs per side over all repeats, and the ratios."""

    def epochs(side: str, repeat: int | None = None, cpu: bool = False) -> list[float]:
        return [
            s
            for r in results
            if r.side == side and (repeat is None or r.repeat == repeat)
            for s in (r.measured_cpu if cpu else r.measured)
        ]

    def run(side: str, repeat: int) -> RunResult:
        return next(r for r in results if r.side == side and r.repeat == repeat)

    lightning, plain = statistics.median(epochs("lightning")), statistics.median(epochs("plain"))
    l_min, p_min = min(epochs("lightning")), min(epochs("plain"))
    l_cpu = statistics.median(epochs("lightning", cpu=True))
    p_cpu = statistics.median(epochs("plain", cpu=True))
    repeats = sorted({r.repeat for r in results})
    pairs = [
        a / b
        for rep in repeats
        for a, b in zip(run("lightning", rep).measured, run("plain", rep).measured, strict=False)
    ]
    # Lightning averages float32 per-batch values, so compare with a tolerance.
    acc_gap = max(r.val_acc for r in results) - min(r.val_acc for r in results)
    loss_gap = max(r.val_loss for r in results) - min(r.val_loss for r in results)
    ratio = lightning / plain
    return Summary(
        lightning_epoch_s=lightning,
        plain_epoch_s=plain,
        ratio=ratio,
        overhead_pct=(ratio - 1) * 100,
        per_step_overhead_ms=(lightning - plain) / results[0].steps_per_epoch * 1000,
        paired_ratio=statistics.median(pairs),
        repeat_ratios=[
            statistics.median(epochs("lightning", r)) / statistics.median(epochs("plain", r))
            for r in repeats
        ],
        lightning_min_epoch_s=l_min,
        plain_min_epoch_s=p_min,
        min_ratio=l_min / p_min,
        lightning_cpu_epoch_s=l_cpu,
        plain_cpu_epoch_s=p_cpu,
        cpu_ratio=l_cpu / p_cpu,
        spread_pct={
            side: (max(epochs(side)) - min(epochs(side))) / min(epochs(side)) * 100
            for side in SIDES
        },
        slow_share={
            side: sum(s > min(epochs(side)) * (1 + SLOW_EPOCH_PCT / 100) for s in epochs(side))
            / len(epochs(side))
            for side in SIDES
        },
        lightning_fit_s=statistics.median(r.fit_seconds for r in results if r.side == "lightning"),
        plain_fit_s=statistics.median(r.fit_seconds for r in results if r.side == "plain"),
        same_metrics=acc_gap < 1e-4 and loss_gap < 1e-4,
        within_target=ratio <= 1 + TARGET_OVERHEAD,
    )


def print_report(
    info: dict[str, Any], setup: dict[str, Any], results: Sequence[RunResult], summary: Summary
) -> None:
    """The human-readable table."""
    print("\nmachine")
    for key, value in info.items():
        print(f"  {key:<18} {value}")
    print("setup")
    for key, value in setup.items():
        print(f"  {key:<18} {value}")
    header = (
        f"\n{'side':<10} {'rep':>3} {'warm-up s':>10} {'median s':>9} {'min s':>7} "
        f"{'cpu s':>7} {'fit s':>7} {'thr':>4} {'val_acc':>8} {'val_loss':>9}"
    )
    print(header)
    print("-" * (len(header) - 1))
    for r in results:
        print(
            f"{r.side:<10} {r.repeat:>3} {r.epoch_seconds[0]:>10.3f} "
            f"{statistics.median(r.measured):>9.3f} {min(r.measured):>7.3f} "
            f"{statistics.median(r.measured_cpu):>7.3f} {r.fit_seconds:>7.2f} "
            f"{r.threads:>4} {r.val_acc:>8.4f} {r.val_loss:>9.4f}"
        )
    print(
        f"\nseconds per epoch (train + val, warm-up excluded, all repeats)\n"
        f"{'':<20}{'lightning':>10}{'plain':>10}{'L/plain':>10}\n"
        f"  {'median wall':<18}{summary.lightning_epoch_s:>10.3f}{summary.plain_epoch_s:>10.3f}"
        f"{summary.ratio:>10.3f}\n"
        f"  {'fastest wall':<18}{summary.lightning_min_epoch_s:>10.3f}"
        f"{summary.plain_min_epoch_s:>10.3f}{summary.min_ratio:>10.3f}\n"
        f"  {'median CPU':<18}{summary.lightning_cpu_epoch_s:>10.3f}"
        f"{summary.plain_cpu_epoch_s:>10.3f}{summary.cpu_ratio:>10.3f}\n"
        f"  {'epoch pairs':<18}{'':>20}{summary.paired_ratio:>10.3f}  (median of L/plain "
        f"per pair)\n"
        f"  overhead (median wall) {summary.overhead_pct:+.1f}%, "
        f"{summary.per_step_overhead_ms:+.2f} ms per train step; per repeat: "
        f"{', '.join(f'{x:.3f}' for x in summary.repeat_ratios)}\n"
        f"  whole fit (median, setup included): lightning {summary.lightning_fit_s:.2f} s, "
        f"plain {summary.plain_fit_s:.2f} s\n"
        f"  same val metrics on every run: {'yes' if summary.same_metrics else 'NO'}\n"
        f"  requirement overhead <= {TARGET_OVERHEAD:.0%}: "
        f"{'PASS' if summary.within_target else 'FAIL'}"
    )
    noisy = {k: v for k, v in summary.slow_share.items() if v > NOISY_SHARE}
    if noisy:
        print(
            "  WARNING: noisy machine, share of epochs over "
            f"{SLOW_EPOCH_PCT:.0f}% above the side's fastest: "
            + ", ".join(f"{k} {v:.0%}" for k, v in noisy.items())
            + f" (> {NOISY_SHARE:.0%}); rerun when idle, or trust the epoch-pair "
            "and fastest-epoch ratios"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="extra config overrides after task=... (e.g. train.batch_size=128)",
    )
    parser.add_argument(
        "--task", default="mnist5k", help="config task group to start from; default mnist5k"
    )
    parser.add_argument(
        "--epochs", type=int, default=5, help="epochs per run (sets train.max_epochs); default 5"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs of each side, alternating; default 2"
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="interleaved",
        help="alternate single epochs (default) or whole runs of each side",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads for both sides (default: torch's own default)",
    )
    parser.add_argument(
        "--checkpointing",
        action="store_true",
        help="give Lightning run.py's ModelCheckpoint + EarlyStopping (default: bare Trainer)",
    )
    parser.add_argument(
        "--progress-bar", action="store_true", help="turn Lightning's progress bar on"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results to this path")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first is warm-up)")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run both sides ``--repeats`` times and report."""
    args = parse_args(argv)
    quiet()
    overrides = [f"task={args.task}", *args.overrides, f"train.max_epochs={args.epochs}"]
    cfg = compose_config(overrides)
    threads = args.threads or torch.get_num_threads()
    info = machine()
    data = load_data(cfg)
    setup = {
        "overrides": overrides,
        "train_size": len(data.train),
        "val_size": len(data.val),
        "batch_size": cfg.train.batch_size,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "mode": args.mode,
        "threads": threads,
        "optimizer": f"{cfg.train.optimizer} + {cfg.train.scheduler}",
        "augment": cfg.train.augment,
        "deterministic": cfg.train.deterministic,
        "precision": cfg.train.precision,
        "accelerator": cfg.train.accelerator,
        "lightning_trainer": ("checkpointing" if args.checkpointing else "bare")
        + (" + progress bar" if args.progress_bar else ""),
    }
    results: list[RunResult] = []
    for repeat in range(args.repeats):
        for result in run_repeat(
            args.mode, cfg, data, threads, repeat, args.checkpointing, args.progress_bar
        ):
            results.append(result)
            print(
                f"repeat {repeat} {result.side:<9} epochs "
                + " ".join(f"{s:.2f}" for s in result.epoch_seconds)
                + f"  val_acc {result.val_acc:.4f}",
                file=sys.stderr,
                flush=True,
            )
    if hasattr(os, "getloadavg"):
        info["load_avg_end"] = os.getloadavg()
    summary = summarize(results)
    print_report(info, setup, results, summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "benchmark": "lightning_overhead",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": info,
            "setup": setup,
            "summary": asdict(summary),
            "runs": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

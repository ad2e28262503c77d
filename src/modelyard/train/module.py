"""The LightningModule: loss, metrics per epoch, optimiser and schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from modelyard.config.schema import TrainConfig
from modelyard.errors import ConfigError
from modelyard.train.augment import random_affine, random_erasing
from modelyard.train.optim import SparseDenseAdam

TrainLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(batch input as the model saw it, logits, labels) -> the training loss."""


def weighted_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    example_weights: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy with each example's term times its weight, divided by what the
    unweighted mean divides by (the batch's summed class weights, or its size).

    So all weights 1 give ``F.cross_entropy``'s mean, and a weight w scales that
    example's share of the loss by w whatever else the batch holds (normalising by the
    summed example weights instead would give a batch of only down-weighted texts its
    full weight back).
    """
    losses = F.cross_entropy(
        logits, labels, weight=class_weights, label_smoothing=label_smoothing, reduction="none"
    )
    if class_weights is None:
        total = torch.tensor(float(labels.shape[0]), device=logits.device, dtype=losses.dtype)
    else:
        total = class_weights[labels].sum()
    return (losses * example_weights.to(losses.dtype)).sum() / total


class Classifier(L.LightningModule):
    """Cross-entropy classifier around any ``nn.Module`` that maps inputs to logits."""

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        augment_fill: float = 0.0,
        class_weights: torch.Tensor | None = None,
        augment: bool | None = None,
    ):
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.augment_fill = augment_fill
        self.augment = cfg.augment if augment is None else augment
        """Image augmentation; text models pass False whatever train.augment says."""
        # A buffer, so the weights move with the module to the training device.
        self.register_buffer("class_weights", class_weights, persistent=False)
        self._ema: dict[str, torch.Tensor] | None = None
        """train.ema > 0: the averaged weights while the model trains, or the training
        weights while the model holds the average (from validation to the next epoch)."""
        self._ema_in_model = False
        self.train_loss: TrainLoss | None = None
        """Replaces the training cross-entropy when set (``modelyard distill`` sets the
        teacher's loss through a callback); validation loss stays cross-entropy."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast("torch.Tensor", self.model(x))

    def _step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        x, y, *rest = batch  # (x, y) or, with per-example loss weights, (x, y, weights)
        if stage == "train" and self.augment:
            cfg = self.cfg
            x = random_affine(
                x,
                max_degrees=cfg.augment_degrees,
                scale=(1.0 - cfg.augment_scale, 1.0 + cfg.augment_scale),
                max_shift=cfg.augment_shift,
                fill=self.augment_fill,
                elastic_alpha=cfg.augment_elastic,
                elastic_sigma=cfg.augment_elastic_sigma,
            )
            if cfg.augment_erasing > 0:
                x = random_erasing(x, p=cfg.augment_erasing, fill=self.augment_fill)
        logits = self(x)
        # Smoothing regularises training only; val loss stays the plain cross-entropy.
        smoothing = self.cfg.label_smoothing if stage == "train" else 0.0
        # Class weights balance the training loss only; val loss stays comparable.
        # A registered buffer: a Tensor (nn.Module's __getattr__ is typed Tensor | Module).
        class_weights = cast(torch.Tensor, self.class_weights)
        weight = class_weights if stage == "train" else None
        if stage == "train" and self.train_loss is not None:
            if rest:
                raise ConfigError("data.extra_text_weight below 1 cannot be used with distill")
            loss = self.train_loss(x, logits, y)
        elif stage == "train" and rest:
            loss = weighted_cross_entropy(logits, y, rest[0], weight, smoothing)
        else:
            loss = F.cross_entropy(logits, y, weight=weight, label_smoothing=smoothing)
        acc = (logits.argmax(dim=1) == y).float().mean()
        on_step = False
        # sync_dist: under DDP every rank must see the same epoch values, or ranks
        # disagree on early stopping and checkpointing (a no-op on one process).
        self.log(
            f"{stage}_loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=True
        )
        self.log(f"{stage}_acc", acc, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        decay = self.cfg.ema
        if decay <= 0:
            return
        with torch.no_grad():
            state = self.model.state_dict()
            if self._ema is None:
                self._ema = {k: v.detach().clone() for k, v in state.items()}
                return
            for key, value in state.items():
                average = self._ema[key]
                if average.is_floating_point():
                    average.lerp_(value.detach(), 1.0 - decay)
                else:  # BatchNorm's step counter
                    average.copy_(value)

    def _swap_ema(self) -> None:
        assert self._ema is not None
        current = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self._ema)
        self._ema = current
        self._ema_in_model = not self._ema_in_model

    def on_validation_epoch_start(self) -> None:
        # Validate (and so checkpoint, early-stop and export) the averaged weights; they
        # stay in the model until training resumes, so the checkpoint saved after this
        # validation holds them, and so does the model when fit ends.
        if self._ema is not None and not self._ema_in_model:
            self._swap_ema()

    def on_train_epoch_start(self) -> None:
        if self._ema is not None and self._ema_in_model:
            self._swap_ema()

    def configure_optimizers(self) -> Any:
        sparse = list(getattr(self.model, "sparse_parameters", list)())
        if sparse:  # hashed n-gram tables: step only the rows a batch touched
            ids = {id(p) for p in sparse}
            optimizer: torch.optim.Optimizer = SparseDenseAdam(
                sparse,
                [p for p in self.parameters() if id(p) not in ids],
                lr=self.cfg.lr,
                weight_decay=self.cfg.weight_decay,
            )
        else:
            optimizer_cls = torch.optim.AdamW if self.cfg.optimizer == "adamw" else torch.optim.Adam
            optimizer = optimizer_cls(
                self.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay
            )
        if self.cfg.scheduler == "none":
            return optimizer
        if self.cfg.scheduler == "onecycle":
            total = int(self.trainer.estimated_stepping_batches)
            scheduler: Any = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=self.cfg.lr, total_steps=max(total, 1)
            )
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
            }
        if self.cfg.scheduler == "plateau":
            # Halve the rate when val loss stalls: pairs naturally with early stopping.
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=0.5, patience=2
            )
            return {
                "optimizer": optimizer,
                "lr_scheduler": {
                    "scheduler": scheduler,
                    "monitor": "val_loss",
                    "interval": "epoch",
                },
            }
        if self.cfg.scheduler == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(self.cfg.max_epochs, 1)
            )
        else:
            scheduler = torch.optim.lr_scheduler.StepLR(
                optimizer, step_size=max(self.cfg.max_epochs // 3, 1), gamma=0.1
            )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

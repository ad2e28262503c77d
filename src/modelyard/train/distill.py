"""``modelyard distill``: train a student on a registered teacher's logits.

The student trains through :func:`modelyard.train.run.train` like any model (config,
Lightning, MLflow run, bundle with its cost report, registry). Two things differ:
a Lightning callback gives the module a training loss that mixes the teacher's
softened logits with the labels (:func:`distillation_loss`), and the run and the
student's bundle record which teacher taught (name, version, bundle.json sha256).
Validation loss stays plain cross-entropy, so early stopping and checkpointing
compare with plain training.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import mlflow
import torch
import torch.nn.functional as F

from modelyard import tracking
from modelyard.config import Config
from modelyard.data import Dataset, TextDataset
from modelyard.errors import ConfigError
from modelyard.paths import checkpoint_dir
from modelyard.train.distill_teacher import Teacher, check_labels, load_teacher_bundle
from modelyard.train.module import Classifier
from modelyard.train.run import (
    LAST_CHECKPOINT,
    TrainingInterrupted,
    TrainResult,
    input_spec,
    load_dataset_for,
    train,
)

TEACHER_TAG = "modelyard.teacher"
"""``<name>/<version>`` (or the folder) of the teacher, on the student's MLflow run."""
TEACHER_SHA_TAG = "modelyard.teacher_bundle_sha256"
MANIFEST_KEY = "distilled_from"
"""bundle.json key of the student's record of its teacher."""


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)``.

    ``*_T`` are the softmaxes of the logits divided by ``T`` (Hinton et al., 2015);
    the KL is averaged over the batch and scaled by ``T^2`` so that its gradients
    keep their size as ``T`` changes. ``alpha=0`` is plain cross-entropy.
    """
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1),
        F.log_softmax(teacher_logits / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    hard = F.cross_entropy(student_logits, labels)
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard


class Distillation(L.Callback):
    """Gives the :class:`Classifier` the teacher's loss and records the teacher in the run."""

    def __init__(self, teacher: Teacher, temperature: float, alpha: float):
        self.teacher = teacher
        self.temperature = temperature
        self.alpha = alpha

    def loss(self, x: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training loss on the batch ``x`` the student saw (augmented or not)."""
        teacher_logits = self.teacher.logits(x)
        return distillation_loss(logits, teacher_logits, labels, self.temperature, self.alpha)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, Classifier):
            raise TypeError(f"distillation trains a Classifier, not {type(pl_module).__name__}")
        pl_module.train_loss = self.loss

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or mlflow.active_run() is None:
            return
        record = self.teacher.record
        where = f"{record.name}/{record.version}" if record.version else record.uri
        with tracking.ctrl_c_after_write():
            mlflow.log_params(
                {
                    "distill.teacher_name": record.name,
                    "distill.teacher_version": record.version or "",
                    "distill.teacher_bundle_sha256": record.bundle_sha256,
                }
            )
            mlflow.set_tags({TEACHER_TAG: where, TEACHER_SHA_TAG: record.bundle_sha256})


def distill(cfg: Config, dataset: Dataset | TextDataset | None = None) -> TrainResult:
    """Train ``cfg``'s model as a student of ``cfg.distill.teacher``; register it.

    Everything that can be refused is checked before a run opens: the teacher must
    resolve to a bundle, have the task's labels in the task's order, take input the
    student's preprocessing can feed, and output logits or probabilities.
    """
    if cfg.train.refit:
        raise ConfigError(
            "distill does not refit (train.refit=true): the refit would train without "
            "the teacher; set train.refit=false"
        )
    if cfg.train.devices * cfg.train.num_nodes > 1:
        raise ConfigError(
            "distill trains in one process (DDP ranks other than 0 would not see the "
            "teacher); set train.devices=1 train.num_nodes=1"
        )
    tracking_uri = tracking.configure(cfg.tracking.uri)
    bundle = load_teacher_bundle(cfg.distill.teacher, tracking_uri)
    if dataset is None:
        dataset = load_dataset_for(cfg)
    check_labels(bundle, dataset.class_names)
    teacher = Teacher(bundle, input_spec(cfg), threads=cfg.train.threads)
    callback = Distillation(teacher, cfg.distill.temperature, cfg.distill.alpha)
    extra: dict[str, Any] = {
        MANIFEST_KEY: {
            **teacher.record.to_dict(),
            "temperature": cfg.distill.temperature,
            "alpha": cfg.distill.alpha,
        }
    }
    try:
        return train(cfg, dataset=dataset, callbacks=[callback], manifest_extra=extra)
    except TrainingInterrupted as interrupt:
        raise _not_resumable(interrupt) from interrupt


def _not_resumable(interrupt: TrainingInterrupted) -> TrainingInterrupted:
    """Ctrl-C: ``train --resume`` would continue the run without its teacher, so the
    run's last checkpoint goes (nothing offers to resume it) and the message says so."""
    if interrupt.run_id is None or interrupt.command is None:
        return interrupt  # nothing to resume: before a checkpoint, or the run had finished
    (checkpoint_dir(interrupt.run_id) / LAST_CHECKPOINT).unlink(missing_ok=True)
    return TrainingInterrupted(
        f"interrupted; MLflow run {interrupt.run_id} ended KILLED; a distill run cannot be "
        "resumed (train --resume would go on without the teacher): run the same command again",
        interrupt.run_id,
    )

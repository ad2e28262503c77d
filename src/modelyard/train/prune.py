"""``train.prune``: prune the fitted model, fine-tune it, and say what that did.

Runs after the fit and before export, on the best checkpoint. Channel pruning
(:func:`modelyard.models.prune.prune_channels`) rebuilds the network smaller, so the
exported graph has fewer multiply-adds; magnitude pruning zeroes weights inside
dense tensors, which ONNX Runtime on CPU computes as fast as any other value, and
the record says so. Either way the record holds the multiply-adds and parameters
counted from the exported ONNX graph before and after, by the same rules as the
bundle's cost report, plus the validation accuracy just after pruning and after
fine-tuning. It is logged to the MLflow run and written to bundle.json ``pruning``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import mlflow
import numpy as np
import onnx
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from modelyard.config.schema import Config, PruneMethod, TrainConfig
from modelyard.export.cost import count_macs, count_parameters
from modelyard.export.onnx import export_onnx
from modelyard.models.prune import make_permanent, prune_channels, prune_magnitude
from modelyard.tracking import ctrl_c_after_write
from modelyard.train.callbacks import InterruptWatch
from modelyard.train.module import Classifier

MAGNITUDE_NOTE = (
    "magnitude pruning zeroes weights inside dense tensors: the exported graph keeps "
    "its shapes and multiply-adds, and ONNX Runtime on CPU runs it no faster"
)
CHANNELS_NOTE = "channel pruning removed whole channels: the exported graph itself is smaller"


def graph_cost(model: nn.Module, in_shape: tuple[int, ...], opset: int) -> tuple[int, int]:
    """(multiply-adds per example, parameters) of ``model``'s exported ONNX graph."""
    example = np.zeros((2, *in_shape), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, example, Path(tmp) / "model.onnx", opset)
        graph = onnx.load(str(path))
    return count_macs(graph, list(example.shape)).macs, count_parameters(graph)


class _FinetuneMetrics(L.Callback):
    """Logs each fine-tuning epoch's val loss/accuracy as ``prune_val_*``, step = epoch
    (the fit's own ``val_*`` curves keep their steps)."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = trainer.callback_metrics
        with ctrl_c_after_write():
            mlflow.log_metrics(
                {f"prune_{k}": float(metrics[k]) for k in ("val_loss", "val_acc") if k in metrics},
                step=trainer.current_epoch,
            )


def _val_accuracy(
    trainer: L.Trainer, module: Classifier, datamodule: L.LightningDataModule
) -> float:
    results = trainer.validate(module, datamodule=datamodule, verbose=False)
    return float(results[0]["val_acc"])


def finetune_config(train: TrainConfig) -> TrainConfig:
    """The training settings of the fine-tuning after pruning: ``prune_finetune_epochs``
    epochs, and no weight average (``train.ema``). An average started at the
    just-pruned weights still held ~40% of them after the default 3 epochs at
    ``ema=0.995`` (63 steps an epoch on mnist5k): ``task=mnist5k`` pruned by half
    (split seed 0) scored 0.726 on test with the average, 0.990 without it."""
    epochs = train.prune_finetune_epochs
    return dataclasses.replace(train, max_epochs=max(epochs, 1), min_epochs=epochs, ema=0.0)


def _finetune(
    cfg: Config, module: Classifier, datamodule: L.LightningDataModule, folder: Path
) -> tuple[float, float]:
    """Fine-tune ``module`` in place for ``train.prune_finetune_epochs`` (best val loss
    restored); returns the val accuracy before and after."""
    epochs = cfg.train.prune_finetune_epochs
    tuner = Classifier(module.model, finetune_config(cfg.train), augment_fill=module.augment_fill)
    best = ModelCheckpoint(dirpath=folder, filename="best", monitor="val_loss", mode="min")
    watch = InterruptWatch()
    trainer = L.Trainer(
        max_epochs=max(epochs, 1),
        accelerator=cfg.train.accelerator,
        devices=1,
        precision=cfg.train.precision,  # type: ignore[arg-type]  # Lightning types precision as a Literal; the schema validates it
        deterministic=cfg.train.deterministic,
        callbacks=[best, _FinetuneMetrics(), watch],
        logger=False,
        default_root_dir=folder,
        enable_progress_bar=cfg.train.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    before = _val_accuracy(trainer, tuner, datamodule)
    if epochs == 0:
        return before, before
    try:
        trainer.fit(tuner, datamodule=datamodule)
    except SystemExit:
        if isinstance(watch.exception, KeyboardInterrupt):
            raise KeyboardInterrupt("interrupted while fine-tuning") from watch.exception
        raise
    if trainer.interrupted:
        raise KeyboardInterrupt("interrupted while fine-tuning")
    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
        tuner.load_state_dict(state["state_dict"])
    return before, _val_accuracy(trainer, tuner, datamodule)


def prune_and_finetune(
    cfg: Config,
    module: Classifier,
    datamodule: L.LightningDataModule,
    folder: Path,
    in_shape: tuple[int, ...],
) -> dict[str, Any]:
    """Prune ``module.model`` in place as ``train.prune*`` say, fine-tune it, log what
    happened to the active MLflow run and return it (bundle.json's ``pruning``)."""
    method = cfg.train.prune
    amount = cfg.train.prune_amount
    model = module.model.cpu()  # the surgery and the ONNX counts run on CPU
    opset = cfg.export.opset
    macs_before, params_before = graph_cost(model, in_shape, opset)
    model.train()  # export left it in eval mode; Lightning keeps a module's mode
    if method is PruneMethod.channels:
        layers = prune_channels(model, amount)
    else:
        layers = prune_magnitude(model, amount)
    acc_pruned, acc_tuned = _finetune(cfg, module, datamodule, folder)
    make_permanent(model)  # masks folded into plain weights (a no-op for channels)
    macs_after, params_after = graph_cost(model, in_shape, opset)
    record: dict[str, Any] = {
        "method": str(method),
        "amount": amount,
        "finetune_epochs": cfg.train.prune_finetune_epochs,
        "unit": "channels" if method is PruneMethod.channels else "non-zero weights",
        "layers": [layer.to_dict() for layer in layers],
        "macs_before": macs_before,
        "macs_after": macs_after,
        "parameters_before": params_before,
        "parameters_after": params_after,
        "val_acc_after_pruning": acc_pruned,
        "val_acc_after_finetune": acc_tuned,
        "note": CHANNELS_NOTE if method is PruneMethod.channels else MAGNITUDE_NOTE,
    }
    if method is PruneMethod.magnitude:
        weights = sum(layer.before for layer in layers)
        record["zeroed_weights"] = weights - sum(layer.after for layer in layers)
    metrics = {
        "prune_macs_before": float(macs_before),
        "prune_macs_after": float(macs_after),
        "prune_parameters_before": float(params_before),
        "prune_parameters_after": float(params_after),
        "prune_val_acc_after_pruning": acc_pruned,
        "prune_val_acc_after_finetune": acc_tuned,
    }
    shape = ", ".join(f"{layer.layer} {layer.before}->{layer.after}" for layer in layers)
    with ctrl_c_after_write():  # as the fine-tune's epochs: one cut short locks the store
        mlflow.log_metrics(metrics)
        mlflow.log_params({"prune_layers": shape[:500], "prune_note": record["note"][:500]})
        mlflow.log_dict(record, "pruning.json")
    return record

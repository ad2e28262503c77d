"""Lightning callbacks that write to MLflow."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import mlflow
from mlflow.tracking import MlflowClient

from modelyard.tracking import ctrl_c_after_write

EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")
logger = logging.getLogger("modelyard.train")


class MlflowEpochMetrics(L.Callback):
    """Log train/val loss and accuracy once per epoch, with the epoch as the step.

    Written at the start of the next epoch and at the end of fit, because Lightning
    aggregates the epoch's training metrics only after ``on_train_epoch_end`` hooks.
    The validation metrics are also written when a checkpoint is saved: the
    checkpoint marks the epoch done for ``--resume``, so a process killed before the
    next epoch starts must not take that epoch's validation figures with it.
    In a distributed run only rank 0 writes (the metrics are synced across ranks).
    """

    def __init__(self, run_id: str):
        self.run_id = run_id
        # The URI, not a client: ddp_spawn pickles callbacks into fresh processes,
        # where MLflow's global tracking URI is unset.
        self.tracking_uri = mlflow.get_tracking_uri()
        self._pending_epoch: int | None = None
        self._logged: set[tuple[str, int]] = set()
        """(metric, epoch) pairs the run already holds: written at a checkpoint, by a
        flush that a Ctrl-C interrupted and ``on_exception`` runs again, or before a
        kill that ``--resume`` continues. None is written twice."""

    def _log(self, client: MlflowClient, epoch: int, name: str, value: float) -> None:
        if (name, epoch) not in self._logged:
            with ctrl_c_after_write():  # not inside the write: see ctrl_c_after_write
                client.log_metric(self.run_id, name, value, step=epoch)
                # Recorded inside the hold: a Ctrl-C held through the write comes
                # after this, so on_exception's flush does not write it again.
                self._logged.add((name, epoch))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A resumed run may redo an epoch whose figures the killed process had written.
        if trainer.is_global_zero:
            client = MlflowClient(self.tracking_uri)
            with ctrl_c_after_write():  # a read cut short holds the lock as well
                self._logged = {
                    (name, metric.step)
                    for name in (*EPOCH_METRICS, "lr")
                    for metric in client.get_metric_history(self.run_id, name)
                }

    def _flush(self, trainer: L.Trainer) -> None:
        epoch = self._pending_epoch
        if epoch is None or trainer.sanity_checking:
            return
        if not trainer.is_global_zero:
            self._pending_epoch = None
            return
        client = MlflowClient(self.tracking_uri)
        metrics = trainer.callback_metrics
        for name in EPOCH_METRICS:
            if name in metrics:
                self._log(client, epoch, name, float(metrics[name]))
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        if lr is not None:
            self._log(client, epoch, "lr", float(lr))
        self._pending_epoch = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Only the validation figures: they are this epoch's by now, while the training
        # aggregates in callback_metrics may still be the previous epoch's.
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        fresh = [name for name in EPOCH_METRICS if name.startswith("val_") and name in metrics]
        if fresh:
            client = MlflowClient(self.tracking_uri)
            for name in fresh:
                self._log(client, trainer.current_epoch, name, float(metrics[name]))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pending_epoch = trainer.current_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # A Ctrl-C can land inside an MLflow write, leaving its client unusable; the
        # interrupt's one-line message must still come out, so a failed last write is
        # reported and dropped, not raised over the interrupt.
        try:
            self._flush(trainer)
        except Exception as error:
            logger.warning("the interrupted epoch's metrics were not logged: %s", error)


class InterruptWatch(L.Callback):
    """Remembers the exception that stopped ``fit``, so a ``SystemExit`` from
    Lightning can be told apart as its answer to Ctrl-C."""

    def __init__(self) -> None:
        self.exception: BaseException | None = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self.exception = exception

"""Lightning callbacks that write to MLflow."""

from __future__ import annotations

import lightning as L
import mlflow
from mlflow.tracking import MlflowClient

EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")


class MlflowEpochMetrics(L.Callback):
    """Log train/val loss and accuracy once per epoch, with the epoch as the step.

    Written at the start of the next epoch and at the end of fit, because Lightning
    aggregates the epoch's training metrics only after ``on_train_epoch_end`` hooks.
    In a distributed run only rank 0 writes (the metrics are synced across ranks).
    """

    def __init__(self, run_id: str):
        self.run_id = run_id
        # The URI, not a client: ddp_spawn pickles callbacks into fresh processes,
        # where MLflow's global tracking URI is unset.
        self.tracking_uri = mlflow.get_tracking_uri()
        self._pending_epoch: int | None = None
        self._logged: set[str] = set()
        """Metrics of the pending epoch already written: a Ctrl-C in the middle of a
        flush runs it again from ``on_exception``, which must not log them twice."""

    def _log(self, client: MlflowClient, name: str, value: float) -> None:
        if name not in self._logged:
            client.log_metric(self.run_id, name, value, step=self._pending_epoch)
            self._logged.add(name)

    def _flush(self, trainer: L.Trainer) -> None:
        if self._pending_epoch is None or trainer.sanity_checking:
            return
        if not trainer.is_global_zero:
            self._pending_epoch = None
            return
        client = MlflowClient(self.tracking_uri)
        metrics = trainer.callback_metrics
        for name in EPOCH_METRICS:
            if name in metrics:
                self._log(client, name, float(metrics[name]))
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        if lr is not None:
            self._log(client, "lr", float(lr))
        self._pending_epoch = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pending_epoch = trainer.current_epoch
        self._logged = set()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._flush(trainer)

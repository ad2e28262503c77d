"""A Lightning callback that reports each epoch's validation score to an Optuna
trial and stops the trial when the pruner says it is not worth finishing.

Written here rather than taken from optuna-integration so that it follows this
project's Lightning version and also records, on the trial, which MLflow run it
trains in (a pruned trial raises before ``train()`` can return its run id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lightning as L
import mlflow

from modelyard.tracking import ctrl_c_after_write

if TYPE_CHECKING:
    import optuna

RUN_ID_ATTR = "mlflow_run_id"
PRUNED_TAG = "modelyard.status"


class OptunaPruning(L.Callback):
    """Report ``monitor`` after every validation epoch; raise ``TrialPruned`` when told."""

    def __init__(self, trial: optuna.Trial, monitor: str):
        self.trial = trial
        self.monitor = monitor

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        run = mlflow.active_run()
        if run is not None:
            self.trial.set_user_attr(RUN_ID_ATTR, run.info.run_id)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        import optuna

        epoch = trainer.current_epoch
        value = float(trainer.callback_metrics[self.monitor])
        self.trial.report(value, step=epoch)
        # What the pruner judged, per epoch: the epoch metrics callback only writes
        # an epoch's numbers once the next one starts, which a pruned trial never does.
        with ctrl_c_after_write():
            mlflow.log_metric(f"pruner_{self.monitor}", value, step=epoch)
        if self.trial.should_prune():
            with ctrl_c_after_write():
                mlflow.set_tag(PRUNED_TAG, "pruned")
            raise optuna.TrialPruned(f"{self.monitor}={value:.4f} at epoch {epoch}")

"""``train()``: data -> Lightning fit -> best checkpoint -> bundle, all tracked in MLflow."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import mlflow
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from modelyard import tracking
from modelyard.config import Config, flatten, from_yaml, to_yaml
from modelyard.data import Dataset, TextDataset, image_spec, load_dataset, load_text_dataset
from modelyard.data.text import class_weights
from modelyard.errors import ModelyardError
from modelyard.features.image import ImageSpec
from modelyard.features.text import TextSpec
from modelyard.models import build_model, build_text_model
from modelyard.paths import checkpoint_dir, run_dir
from modelyard.train.callbacks import MlflowEpochMetrics
from modelyard.train.datamodule import ImageDataModule
from modelyard.train.distributed import RUN_ID_ENV, global_rank
from modelyard.train.finish import finish
from modelyard.train.module import Classifier
from modelyard.train.text_data import TextDataModule, text_spec
from modelyard.train.tracking_inputs import log_dataset_inputs

CONFIG_FILE = "config.yaml"
LAST_CHECKPOINT = "last.ckpt"
TASK_TAG = "modelyard.task"
STATUS_TAG = "modelyard.status"


@dataclass(frozen=True)
class TrainResult:
    """Where everything a training run produced lives."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    model_name: str
    model_version: str | None
    model_uri: str
    bundle_path: Path
    checkpoint_path: Path
    metrics: dict[str, float]
    resumed: bool
    fit_seconds: float
    """Wall time of the Lightning fit (this process's part of it, when resumed)."""
    epochs: int
    """Epochs trained in total (early stopping may end before train.max_epochs)."""
    rank: int = 0
    """This process's DDP rank. Only rank 0's result holds metrics, a bundle and a
    registered version; the other ranks only fitted their share."""

    @property
    def registry_uri(self) -> str | None:
        return f"models:/{self.model_name}/{self.model_version}" if self.model_version else None


def find_resumable_run(experiment_id: str, task: str) -> tuple[str, Config]:
    """The newest unfinished run of ``task`` that left a ``last.ckpt`` behind."""
    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{TASK_TAG}` = '{task}'",
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    for run in runs:
        if run.info.status == RunStatus.to_string(RunStatus.FINISHED):
            continue
        config_file = run_dir(run.info.run_id) / CONFIG_FILE
        if (checkpoint_dir(run.info.run_id) / LAST_CHECKPOINT).exists() and config_file.exists():
            return run.info.run_id, from_yaml(config_file.read_text())
    raise ModelyardError(
        f"no interrupted '{task}' run with a checkpoint to resume; start a new run without --resume"
    )


def _trainer(
    cfg: Config, folder: Path, run_id: str, extra: Sequence[L.Callback] = ()
) -> tuple[L.Trainer, ModelCheckpoint]:
    best = ModelCheckpoint(
        dirpath=folder, filename="best", monitor="val_loss", mode="min", save_last=True
    )
    callbacks = [
        best,
        EarlyStopping(monitor="val_loss", mode="min", patience=cfg.train.early_stopping_patience),
        MlflowEpochMetrics(run_id),
        *extra,
    ]
    trainer = L.Trainer(
        max_epochs=cfg.train.max_epochs,
        min_epochs=min(cfg.train.min_epochs, cfg.train.max_epochs),
        accelerator=cfg.train.accelerator,
        devices=cfg.train.devices,
        num_nodes=cfg.train.num_nodes,
        strategy=cfg.train.strategy,
        precision=cfg.train.precision,  # type: ignore[arg-type]
        deterministic=cfg.train.deterministic,
        callbacks=callbacks,
        logger=False,
        default_root_dir=folder,
        enable_progress_bar=cfg.train.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return trainer, best


def _quiet() -> None:
    """Keep the console to the progress bar and modelyard's own summary."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if os.environ.get("MODELYARD_DEBUG"):
        return
    for name in ("lightning.pytorch", "lightning.fabric", "lightning", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def load_dataset_for(cfg: Config) -> Dataset | TextDataset:
    """The configured task's dataset, image or text."""
    return load_text_dataset(cfg.data) if cfg.task.kind == "text" else load_dataset(cfg.data)


def input_spec(cfg: Config) -> ImageSpec | TextSpec:
    """The preprocessing spec of the configured task (image or text)."""
    return text_spec(cfg) if cfg.task.kind == "text" else image_spec(cfg.data)


def _text_setup(
    cfg: Config, dataset: TextDataset, spec: TextSpec
) -> tuple[Classifier, L.LightningDataModule]:
    model = build_text_model(cfg.model, spec.vocab_size, len(dataset.class_names))
    weights = None
    if cfg.train.class_balance == "weights":
        weights = torch.from_numpy(class_weights(dataset.train.labels, len(dataset.class_names)))
    module = Classifier(model, cfg.train, class_weights=weights, augment=False)
    datamodule = TextDataModule(
        dataset,
        spec,
        cfg.train.batch_size,
        cfg.train.num_workers,
        seed=cfg.train.seed,
        punctuation_dropout=cfg.train.punctuation_dropout,
    )
    return module, datamodule


def _fit(
    cfg: Config,
    dataset: Dataset | TextDataset,
    run_id: str,
    resume: bool,
    callbacks: Sequence[L.Callback] = (),
) -> tuple[Classifier, int, int]:
    """The fitted module (best checkpoint restored), epochs trained and the world size."""
    spec = input_spec(cfg)
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    datamodule: L.LightningDataModule
    if isinstance(dataset, TextDataset):
        assert isinstance(spec, TextSpec)
        module, datamodule = _text_setup(cfg, dataset, spec)
    else:
        assert isinstance(spec, ImageSpec)
        model = build_model(cfg.model, spec.shape, len(dataset.class_names))
        # Pixels shifted in by augmentation get the background value (0) after normalising.
        module = Classifier(model, cfg.train, augment_fill=(0.0 - spec.mean) / spec.std)
        datamodule = ImageDataModule(dataset, spec, cfg.train.batch_size, cfg.train.num_workers)
    folder = checkpoint_dir(run_id)
    trainer, best = _trainer(cfg, folder, run_id, callbacks)
    last = folder / LAST_CHECKPOINT
    threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None)
    finally:
        torch.set_num_threads(threads)
    if trainer.interrupted:
        raise KeyboardInterrupt
    if best.best_model_path:
        # Best-checkpoint restore: the bundle is the epoch with the lowest val loss.
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"])
    return module, trainer.current_epoch, trainer.world_size


def train(
    cfg: Config,
    resume: bool = False,
    dataset: Dataset | TextDataset | None = None,
    *,
    callbacks: Sequence[L.Callback] = (),
    parent_run_id: str | None = None,
    run_name: str | None = None,
) -> TrainResult:
    """Train, evaluate, bundle and register one model; everything tracked in MLflow.

    With ``resume=True`` the newest interrupted run of the task continues from its
    ``last.ckpt`` into the same MLflow run, with the config it started with.
    ``dataset`` replaces loading ``cfg.data`` (the dvc pipeline passes the splits
    its prepare stage wrote). ``callbacks`` join the Lightning trainer's own
    (``modelyard tune`` adds its pruning callback); ``parent_run_id`` makes the run a
    child of that MLflow run.
    """
    _quiet()
    tracking_uri = tracking.configure(cfg.tracking.uri)
    rank = global_rank(cfg.train.devices)
    if rank != 0:
        return _train_replica(cfg, rank, tracking_uri, resume, dataset)
    experiment_id = tracking.ensure_experiment(cfg.tracking.experiment or cfg.task.name)
    run_id = None
    if resume:
        run_id, cfg = find_resumable_run(experiment_id, cfg.task.name)
    if dataset is None:
        # Fails fast on bad data, before a run is opened.
        dataset = load_dataset_for(cfg)
    # The parent may belong to another process (a tuning worker elsewhere), so the
    # child is linked by MLflow's parent tag rather than by nesting active runs.
    parent = {"mlflow.parentRunId": parent_run_id} if parent_run_id else None
    with mlflow.start_run(
        run_id=run_id, experiment_id=experiment_id, run_name=run_name, tags=parent
    ) as run:
        run_id = run.info.run_id
        run_dir(run_id).mkdir(parents=True, exist_ok=True)
        if not resume:
            (run_dir(run_id) / CONFIG_FILE).write_text(to_yaml(cfg))
            mlflow.log_params(flatten(cfg))
            mlflow.set_tags(
                {**tracking.git_info(), TASK_TAG: cfg.task.name, STATUS_TAG: "training"}
            )
            mlflow.log_text(to_yaml(cfg), "config.yaml")
            log_dataset_inputs(dataset)
        # Ranks that Lightning launches inherit this environment: same run, same folder.
        os.environ[RUN_ID_ENV] = run_id
        started = time.perf_counter()
        try:
            module, epochs, world_size = _fit(cfg, dataset, run_id, resume, callbacks)
        finally:
            os.environ.pop(RUN_ID_ENV, None)
        fit_seconds = time.perf_counter() - started
        mlflow.log_metrics(
            {"fit_seconds": fit_seconds, "epochs_trained": epochs, "world_size": world_size}
        )
        finished = finish(cfg, module.model, dataset, input_spec(cfg), run_id)
        mlflow.set_tag(STATUS_TAG, "complete")
    return TrainResult(
        run_id=run_id,
        experiment_id=experiment_id,
        tracking_uri=tracking_uri,
        model_name=cfg.task.model_name,
        model_version=finished.version,
        model_uri=finished.model_uri,
        bundle_path=finished.bundle.path,
        checkpoint_path=checkpoint_dir(run_id),
        metrics=finished.report.metrics(),
        resumed=resume,
        fit_seconds=fit_seconds,
        epochs=epochs,
    )


def _train_replica(
    cfg: Config,
    rank: int,
    tracking_uri: str,
    resume: bool,
    dataset: Dataset | TextDataset | None,
) -> TrainResult:
    """A DDP rank other than 0: fit its shard in lockstep with rank 0, and nothing else.

    Rank 0 alone opens the MLflow run, logs, writes the bundle and registers; this
    process never touches the tracking store (its callbacks skip logging too).
    """
    run_id = os.environ.get(RUN_ID_ENV, f"rank-{rank}")
    config_file = run_dir(run_id) / CONFIG_FILE
    if resume and config_file.exists():
        cfg = from_yaml(config_file.read_text())  # the config rank 0 resumed with
    if dataset is None:
        dataset = load_dataset_for(cfg)
    started = time.perf_counter()
    _, epochs, _ = _fit(cfg, dataset, run_id, resume)
    return TrainResult(
        run_id=run_id,
        experiment_id="",
        tracking_uri=tracking_uri,
        model_name=cfg.task.model_name,
        model_version=None,
        model_uri="",
        bundle_path=run_dir(run_id) / "bundle",
        checkpoint_path=checkpoint_dir(run_id),
        metrics={},
        resumed=resume,
        fit_seconds=time.perf_counter() - started,
        epochs=epochs,
        rank=rank,
    )

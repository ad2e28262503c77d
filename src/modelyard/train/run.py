"""``train()``: data -> Lightning fit -> best checkpoint -> bundle, all tracked in MLflow."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import lightning as L
import mlflow
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient
from torch import nn

from modelyard import tracking
from modelyard.config import Config, compose_config, flatten, from_yaml, to_yaml
from modelyard.config.overrides import override_key
from modelyard.config.schema import PruneMethod
from modelyard.data import Dataset, TextDataset
from modelyard.data.text import training_class_weights
from modelyard.errors import ConfigError, UsageError
from modelyard.features.image import ImageSpec
from modelyard.features.text import TextSpec
from modelyard.modality import InputSpec, modality_for
from modelyard.models import build_model, build_text_model
from modelyard.paths import checkpoint_dir, run_dir
from modelyard.train.callbacks import InterruptWatch, MlflowEpochMetrics
from modelyard.train.datamodule import ImageDataModule
from modelyard.train.distributed import RUN_ID_ENV, global_rank
from modelyard.train.finish import finish
from modelyard.train.module import Classifier
from modelyard.train.prune import prune_and_finetune
from modelyard.train.refit import Refit, best_epochs, refit_on_all
from modelyard.train.text_data import TextDataModule
from modelyard.train.threads import THREADS_TAG, AdaptiveThreads, free_cores
from modelyard.train.tracking_inputs import log_dataset_inputs

CONFIG_FILE = "config.yaml"
LAST_CHECKPOINT = "last.ckpt"
TASK_TAG = "modelyard.task"
STATUS_TAG = "modelyard.status"
PARENT_TAG = "mlflow.parentRunId"
"""Set on tune trials: such a run belongs to its study, never to ``train --resume``."""
RESUME_SAFE_KEYS = frozenset({"train.progress_bar", "train.threads", "tracking.uri"})
"""Overrides ``--resume`` accepts with a value other than the stored one: they change
how the run is shown or where it is found, not what it trains."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped training. The MLflow run was ended ``KILLED``; the
    message is one line with the command that resumes it (or says why none can).

    A :class:`KeyboardInterrupt`, so that code which stops on Ctrl-C (Optuna, the
    CLI) still does; the CLI prints the message and exits 130.
    """

    def __init__(self, message: str, run_id: str | None = None, command: str | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.command = command
        """The shell command that resumes the run; None when there is nothing to resume."""


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


@dataclass(frozen=True)
class ResumableRun:
    """An interrupted training run that ``--resume`` can continue."""

    run_id: str
    experiment_id: str
    cfg: Config
    """The config the run started with (``config.yaml`` in its run folder)."""


def _resumable_runs(task: str | None) -> Iterator[ResumableRun]:
    """Unfinished training runs with a ``last.ckpt``, newest first, across all experiments.

    Tune trials (runs with a parent) are skipped: they belong to their study, and
    resuming one would train its sampled hyper-parameters outside the study.
    """
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return
    task_filter = f" and tags.`{TASK_TAG}` = '{task}'" if task else ""
    token: str | None = None
    while True:
        page = client.search_runs(
            experiments,
            filter_string=f"attributes.status != 'FINISHED'{task_filter}",
            order_by=["attributes.start_time DESC"],
            max_results=200,
            page_token=token,
        )
        for run in page:
            resumable = _as_resumable(run)
            if resumable is not None:
                yield resumable
        token = page.token
        if not token:
            return


def _as_resumable(run: Run) -> ResumableRun | None:
    tags = run.data.tags
    if TASK_TAG not in tags or PARENT_TAG in tags:
        return None
    config_file = run_dir(run.info.run_id) / CONFIG_FILE
    if not (checkpoint_dir(run.info.run_id) / LAST_CHECKPOINT).exists():
        return None
    if not config_file.exists():
        return None
    return ResumableRun(run.info.run_id, run.info.experiment_id, from_yaml(config_file.read_text()))


def resume_command(cfg: Config) -> str:
    """The shell command that resumes the newest interrupted run of ``cfg``'s task."""
    shipped = (resources.files("modelyard.config") / "task" / f"{cfg.task.name}.yaml").is_file()
    # A task.name given on top of a shipped task (image_folder) is not a task= choice.
    selector = "task" if shipped else "task.name"
    words = ["modelyard", "train", f"{selector}={cfg.task.name}"]
    if cfg.tracking.uri:
        words.append(f"tracking.uri={cfg.tracking.uri}")
    return shlex.join([*words, "--resume"])


def find_resumable_run(task: str | None = None) -> ResumableRun:
    """The newest unfinished run of ``task`` (of any task when None) that left a
    ``last.ckpt`` behind; the error names the tasks that do have one."""
    found = next(_resumable_runs(task), None)
    if found is not None:
        return found
    if task is None:
        raise UsageError(
            "no interrupted training run with a checkpoint to resume; "
            "start a new run without --resume"
        )
    others: dict[str, str] = {}
    for run in _resumable_runs(None):
        others.setdefault(run.cfg.task.name, resume_command(run.cfg))
    hint = (
        "interrupted runs exist for: " + ", ".join(f"{t} (`{c}`)" for t, c in others.items())
        if others
        else "start a new run without --resume"
    )
    raise UsageError(f"no interrupted '{task}' run with a checkpoint to resume; {hint}")


def _touched_keys(override: str, cfg: Config) -> list[str]:
    """The ``section.key`` names an override sets; ``task=``/``task.name=`` select the run."""
    key = override_key(override)
    if key in ("task", "task.name"):
        return []
    flat = flatten(cfg)
    if "." in key:
        return [key]
    return [name for name in flat if name.startswith(f"{key}.")]  # a group: train=fast


def resume_config(overrides: Sequence[str] = ()) -> tuple[str, Config]:
    """The run ``modelyard train [overrides] --resume`` continues, and its config.

    ``task=`` in ``overrides`` picks that task's newest interrupted run; without it,
    the newest of any task. Every other override must agree with the stored config,
    except :data:`RESUME_SAFE_KEYS`, which are applied; a conflicting one is refused
    by name rather than ignored, because the run continues with its own config.
    """
    replica_run = os.environ.get(RUN_ID_ENV)
    if replica_run:  # a DDP rank launched by rank 0: the run rank 0 resumed
        return replica_run, from_yaml((run_dir(replica_run) / CONFIG_FILE).read_text())
    wanted = compose_config(overrides)
    keys = [override_key(o) for o in overrides]
    task_given = "task" in keys or "task.name" in keys
    tracking.configure(wanted.tracking.uri)
    found = find_resumable_run(wanted.task.name if task_given else None)
    stored = found.cfg
    if not task_given and overrides:
        # Compare with what the overrides give on top of the run's own task, so that
        # a task's own settings (e.g. langid's train.punctuation_dropout) agree.
        # Not a shipped task name (task.name=...): keep the plain composition.
        with contextlib.suppress(ConfigError):
            wanted = compose_config([f"task={stored.task.name}", *overrides])
    wanted_flat, stored_flat = flatten(wanted), flatten(stored)
    conflicts: list[str] = []
    cfg = from_yaml(to_yaml(stored))
    for override in overrides:
        for key in _touched_keys(override, stored):
            if wanted_flat.get(key) == stored_flat.get(key):
                continue
            if key in RESUME_SAFE_KEYS:
                section, name = key.split(".", 1)
                setattr(getattr(cfg, section), name, getattr(getattr(wanted, section), name))
            elif key not in (c.split("=", 1)[0] for c in conflicts):
                conflicts.append(f"{key}={stored_flat.get(key)} (override: {wanted_flat.get(key)})")
    if conflicts:
        raise ConfigError(
            f"--resume continues run {found.run_id} with the config it started with, "
            f"which conflicts with: {', '.join(conflicts)}; drop the override, or start a "
            "new run without --resume"
        )
    return found.run_id, cfg


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
        precision=cfg.train.precision,  # type: ignore[arg-type]  # Lightning types precision as a Literal; the schema validates it
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
    """The configured task's dataset, loaded by its kind."""
    dataset: Dataset | TextDataset = modality_for(cfg.task.kind).load_dataset(cfg.data)
    return dataset


def input_spec(cfg: Config) -> InputSpec:
    """The preprocessing spec of the configured task, as its kind derives it."""
    spec: InputSpec = modality_for(cfg.task.kind).input_spec(cfg)
    return spec


Setup = Callable[[Config, Any, Any], tuple[Classifier, L.LightningDataModule]]


def _image_setup(
    cfg: Config, dataset: Dataset, spec: ImageSpec
) -> tuple[Classifier, L.LightningDataModule]:
    model = build_model(cfg.model, spec.shape, len(dataset.class_names))
    # Pixels shifted in by augmentation get the background value (0) after normalising.
    module = Classifier(model, cfg.train, augment_fill=(0.0 - spec.mean) / spec.std)
    datamodule = ImageDataModule(dataset, spec, cfg.train.batch_size, cfg.train.num_workers)
    return module, datamodule


def _text_setup(
    cfg: Config, dataset: TextDataset, spec: TextSpec
) -> tuple[Classifier, L.LightningDataModule]:
    model = build_text_model(cfg.model, spec.vocab_size, len(dataset.class_names))
    weights = training_class_weights(
        dataset.train.labels,
        dataset.class_names,
        cfg.train.class_balance == "weights",
        cfg.data.label_weights,
    )
    module = Classifier(
        model,
        cfg.train,
        class_weights=None if weights is None else torch.from_numpy(weights),
        augment=False,
    )
    datamodule = TextDataModule(
        dataset,
        spec,
        cfg.train.batch_size,
        cfg.train.num_workers,
        seed=cfg.train.seed,
        punctuation_dropout=cfg.train.punctuation_dropout,
        extra_weight=cfg.data.extra_text_weight,
    )
    return module, datamodule


SETUPS: dict[str, Setup] = {"image": _image_setup, "text": _text_setup}
"""kind -> the network and Lightning data module that train it: the torch half of an
input kind (:mod:`modelyard.modality` holds the torch-free half)."""


def _setup(cfg: Config, dataset: Any, spec: Any) -> tuple[Classifier, L.LightningDataModule]:
    setup = SETUPS.get(cfg.task.kind)
    if setup is None:
        raise ConfigError(
            f"task.kind={cfg.task.kind} cannot be trained here; trainable kinds: "
            f"{', '.join(SETUPS)}"
        )
    return setup(cfg, dataset, spec)


def _fit(
    cfg: Config,
    dataset: Dataset | TextDataset,
    run_id: str,
    resume: bool,
    callbacks: Sequence[L.Callback] = (),
    checkpoints: Path | None = None,
) -> tuple[Classifier, int, int]:
    """The fitted module (best checkpoint restored), epochs trained and the world size.

    ``checkpoints`` replaces the run's checkpoint folder (the refit keeps its own)."""
    spec = input_spec(cfg)
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    module, datamodule = _setup(cfg, dataset, spec)
    folder = checkpoints or checkpoint_dir(run_id)
    watch = InterruptWatch()
    # train.threads=0: the cores other processes leave free (train/threads.py), chosen
    # once for a deterministic run (a thread count changes the sums' order), else
    # re-checked every second.
    pinned = cfg.train.threads or (free_cores() if cfg.train.deterministic else 0)
    adaptive = [] if pinned else [AdaptiveThreads()]
    trainer, best = _trainer(cfg, folder, run_id, [*callbacks, *adaptive, watch])
    last = folder / LAST_CHECKPOINT
    threads = torch.get_num_threads()
    if pinned:
        torch.set_num_threads(pinned)
        if mlflow.active_run():
            with tracking.ctrl_c_after_write():
                mlflow.set_tag(THREADS_TAG, str(pinned))
    main_thread = threading.current_thread() is threading.main_thread()
    sigint = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None)
    except SystemExit:
        # Lightning answers Ctrl-C with its on_exception hooks, then sys.exit(1): an
        # exit, not an exception, which would skip every handler above (the MLflow run
        # would end FAILED and the CLI would print nothing).
        if isinstance(watch.exception, KeyboardInterrupt):
            raise TrainingInterrupted("interrupted") from watch.exception
        raise
    finally:
        torch.set_num_threads(threads)
        if sigint is not None:
            # Lightning ignores SIGINT from the first Ctrl-C on; give it back.
            signal.signal(signal.SIGINT, sigint)
    if trainer.interrupted:  # Lightning versions that return instead of exiting
        raise TrainingInterrupted("interrupted")
    if best.best_model_path:
        # Best-checkpoint restore: the bundle is the epoch with the lowest val loss.
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"])
    return module, trainer.current_epoch, trainer.world_size


def train(
    cfg: Config,
    resume: bool | str = False,
    dataset: Dataset | TextDataset | None = None,
    *,
    callbacks: Sequence[L.Callback] = (),
    parent_run_id: str | None = None,
    run_name: str | None = None,
    manifest_extra: dict[str, Any] | None = None,
) -> TrainResult:
    """Train, evaluate, bundle and register one model; everything tracked in MLflow.

    With ``resume=True`` the newest interrupted run of the task continues from its
    ``last.ckpt`` into the same MLflow run, with the config it started with; with
    ``resume=<run id>`` that run continues with ``cfg`` (:func:`resume_config` gives
    the run and its stored config). Ctrl-C ends the MLflow run ``KILLED`` and raises
    :class:`TrainingInterrupted`, whose message names the command that resumes it.
    ``dataset`` replaces loading ``cfg.data`` (the dvc pipeline passes the splits
    its prepare stage wrote). ``callbacks`` join the Lightning trainer's own
    (``modelyard tune`` adds its pruning callback); ``parent_run_id`` makes the run a
    child of that MLflow run. ``manifest_extra`` joins the bundle's bundle.json
    (``modelyard distill`` records its teacher).
    """
    _quiet()
    tracking_uri = tracking.configure(cfg.tracking.uri)
    rank = global_rank(cfg.train.devices)
    if rank != 0:
        return _train_replica(cfg, rank, tracking_uri, bool(resume), dataset)
    run_id = None
    if isinstance(resume, str):
        run_id = resume
        experiment_id = MlflowClient().get_run(run_id).info.experiment_id
    elif resume:
        found = find_resumable_run(cfg.task.name)
        run_id, experiment_id, cfg = found.run_id, found.experiment_id, found.cfg
    else:
        experiment_id = tracking.ensure_experiment(cfg.tracking.experiment or cfg.task.name)
    resumed = run_id is not None
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
        try:
            run_dir(run_id).mkdir(parents=True, exist_ok=True)
            if not resumed:
                # Made before the hold below: git's subprocesses are no write, and
                # Ctrl-C stays live while they run.
                config_yaml = to_yaml(cfg)
                tags = {**tracking.git_info(), TASK_TAG: cfg.task.name, STATUS_TAG: "training"}
            # The run's opening writes, held from a Ctrl-C as the epochs' are
            # (tracking.ctrl_c_after_write: one cut short would lock the store).
            with tracking.ctrl_c_after_write():
                if not resumed:
                    (run_dir(run_id) / CONFIG_FILE).write_text(config_yaml)
                    mlflow.log_params(flatten(cfg))
                    mlflow.set_tags(tags)
                    mlflow.log_text(config_yaml, "config.yaml")
                    log_dataset_inputs(dataset, modality_for(cfg.task.kind))
                else:
                    mlflow.set_tag(STATUS_TAG, "training")
            # Ranks that Lightning launches inherit this environment: same run, same folder.
            os.environ[RUN_ID_ENV] = run_id
            started = time.perf_counter()
            try:
                module, epochs, world_size = _fit(cfg, dataset, run_id, resumed, callbacks)
            finally:
                os.environ.pop(RUN_ID_ENV, None)
            fit_seconds = time.perf_counter() - started
            with tracking.ctrl_c_after_write():
                mlflow.log_metrics(
                    {"fit_seconds": fit_seconds, "epochs_trained": epochs, "world_size": world_size}
                )
            pruned = cfg.train.prune is not PruneMethod.none
            pruning = {"pruning": _prune(cfg, dataset, run_id, module)} if pruned else {}
            final = _refit(cfg, dataset, run_id, epochs) if cfg.train.refit else None
            spec = input_spec(cfg)
            finished = finish(
                cfg,
                module.model,
                dataset,
                spec,
                run_id,
                final=final,
                extra={**(manifest_extra or {}), **pruning},
            )
        except KeyboardInterrupt as interrupt:
            raise _end_interrupted(cfg, run_id, parent_run_id) from interrupt
        # The run is complete. Its last writes (the status, the run's end) are held
        # together, and a Ctrl-C during them comes after them, to a finished run:
        # nothing to end KILLED, nothing to resume. A second press cuts them short.
        ended = False
        try:
            with tracking.ctrl_c_after_write():
                mlflow.set_tag(STATUS_TAG, "complete")
                mlflow.end_run()
                ended = True
        except KeyboardInterrupt as interrupt:
            if not ended:
                raise _end_interrupted(cfg, run_id, parent_run_id) from interrupt
            raise TrainingInterrupted(
                f"interrupted after MLflow run {run_id} had finished: it is complete, "
                f"its bundle is {finished.bundle.path}; nothing to resume",
                run_id,
            ) from interrupt
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
        resumed=resumed,
        fit_seconds=fit_seconds,
        epochs=epochs,
    )


def _prune(
    cfg: Config, dataset: Dataset | TextDataset, run_id: str, module: Classifier
) -> dict[str, Any]:
    """``train.prune``: prune the fitted model in place, then fine-tune it (:mod:`.prune`)."""
    # Composing refused pruning for anything but image CNNs (config/prune.py).
    spec = cast(ImageSpec, input_spec(cfg))
    _, datamodule = _setup(cfg, dataset, spec)
    folder = checkpoint_dir(run_id) / "prune"
    return prune_and_finetune(cfg, module, datamodule, folder, spec.shape)


def _refit(cfg: Config, dataset: Dataset | TextDataset, run_id: str, epochs: int) -> Refit:
    """``train.refit``: the model fitted on every labelled example (:mod:`.refit`)."""
    best = best_epochs(checkpoint_dir(run_id) / "best.ckpt", epochs)

    def fit(refit_cfg: Config, everything: TextDataset) -> nn.Module:
        folder = checkpoint_dir(run_id) / "refit"
        module, _, _ = _fit(refit_cfg, everything, run_id, False, checkpoints=folder)
        return module.model

    started = time.perf_counter()
    refit = refit_on_all(cfg, dataset, best, fit)
    seconds = time.perf_counter() - started
    params = {k: v for k, v in refit.record.items() if k != "final_fit_fingerprint"}
    with tracking.ctrl_c_after_write():  # as the opening writes: see train()
        mlflow.log_metric("refit_seconds", seconds)
        mlflow.log_params(params)
        mlflow.set_tag("modelyard.final_fit", refit.record["final_fit_data"])
    return refit


LOCKED_RETRY_PAUSES_S = (0.5, 1.0, 2.0)
"""Pauses before each retry of a tracking write that SQLite refused as locked."""


def _while_locked(write: Callable[[], object]) -> None:
    """Run a tracking write at Ctrl-C, again after a pause while an SQLite tracking
    store says "database is locked" (CI saw it once: the run then stayed RUNNING and
    the command exited 1 instead of 130). Any other error is raised at once."""
    tracking.write_retrying(write, ("database is locked",), LOCKED_RETRY_PAUSES_S)


def _end_interrupted(cfg: Config, run_id: str, parent_run_id: str | None) -> TrainingInterrupted:
    """End the run ``KILLED`` (resumable, unlike ``FAILED``) and say what next.

    Written by the run's id: ``mlflow.end_run`` takes the run off the active stack
    before it writes the end, so a second Ctrl-C cutting that write short leaves no
    active run (``mlflow.set_tag`` would start a new one), and the run RUNNING."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    killed = RunStatus.to_string(RunStatus.KILLED)
    _while_locked(lambda: client.set_tag(run_id, STATUS_TAG, "interrupted"))
    if mlflow.active_run() is not None:
        _while_locked(lambda: mlflow.end_run(killed))
    else:
        _while_locked(lambda: client.set_terminated(run_id, killed))
    where = f"MLflow run {run_id} ended KILLED"
    if parent_run_id:
        # A tune trial: its study, not `train --resume`, decides what runs next.
        return TrainingInterrupted(f"interrupted; {where}", run_id)
    if not (checkpoint_dir(run_id) / LAST_CHECKPOINT).exists():
        return TrainingInterrupted(
            f"interrupted before the first checkpoint; {where}, nothing to resume: "
            "run the same command again",
            run_id,
        )
    command = resume_command(cfg)
    return TrainingInterrupted(f"interrupted; {where}; resume it with: {command}", run_id, command)


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

"""The typed configuration: the one place its shape is defined.

Hydra composes YAML from this package's groups (task, data, model, train) on top
of these dataclasses, so an unknown key or a value of the wrong type fails while
composing, before any work starts. A field whose values come from a closed set is
typed with its :class:`~modelyard.choices.Choice` (:mod:`modelyard.choices`), so
composing refuses another value too; the few sets that grow by registration are
checked by :func:`validate` against :data:`CHOICES`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from modelyard.choices import (
    Accelerator,
    Choice,
    ClassBalance,
    DataSource,
    Optimizer,
    Precision,
    PromoteMetric,
    Pruner,
    Sampler,
    Scheduler,
    Split,
    SplitBy,
    Strategy,
    TuneMetric,
    invalid_choice,
)
from modelyard.config.prune import check_prune
from modelyard.errors import ConfigError


@dataclass
class TaskConfig:
    name: str = "mnist5k"
    """Short task name; also the name of the MLflow experiment."""
    model_name: str = "mnist5k-cnn"
    """Registered model name in the MLflow Model Registry."""
    kind: str = "image"
    """Input kind the bundle serves: ``image`` or ``text``."""


EXTRA_TEXT_SOURCES = ("word_lists", "ddtp", "manpages", "catalogues")
"""The added-text sources ``data.extra_text_weights`` can weigh (catalogues: added by
benchmarks/langid's ``--catalogues``)."""


@dataclass
class DataConfig:
    source: DataSource = DataSource.mnist5k
    """Dataset source: mnist5k, digits, mnist, fashion_mnist, image_folder (images);
    conllu or table (text)."""
    path: str | None = None
    """image_folder: folder with one sub-folder per class. conllu: folder holding the
    CoNLL-U files of ``files`` (empty: download them, sha256-verified). table: the
    CSV/TSV/JSONL/Parquet file."""
    files: dict[str, str] = field(default_factory=dict)
    """conllu: CoNLL-U file name -> label; each sentence (``# text =``) is one example."""
    labels: list[str] = field(default_factory=list)
    """Text sources: the class names in order; a label outside them is an error. Empty:
    the labels found, sorted."""
    text_column: str = "text"
    """table: the column holding the text."""
    label_column: str = "label"
    """table: the column holding the label."""
    image_size: int = 28
    """Images are resized to image_size x image_size pixels."""
    channels: int = 1
    """1 (grayscale) or 3 (RGB)."""
    mean: float = 0.1307
    """Pixel mean (on a 0..1 scale) subtracted before the model sees an image."""
    std: float = 0.3081
    """Pixel standard deviation (0..1 scale) divided out after the mean."""
    val_fraction: float = 0.1
    """Share of the training pool held out for validation (early stopping)."""
    test_fraction: float = 0.1
    """Share held out for the final test when the source has no fixed test split."""
    split_seed: int = 0
    """Seed of the stratified train/val/test split (independent of the training seed)."""
    word_lists: dict[str, str] = field(default_factory=dict)
    """Text sources: label -> wordfreq language (``da: da``); ``data.word_list_sentences``
    pseudo-sentences of frequency-sampled words per label join the training split only."""
    word_list_sentences: int = 0
    """Pseudo-sentences per ``data.word_lists`` label (0: none)."""
    ddtp_sentences: int = 0
    """Text sources: at most this many sentences per label (da, sv, nb) from Debian's
    translated package descriptions join the training split only (0: none;
    :mod:`modelyard.data.ddtp`)."""
    manpage_sentences: int = 0
    """Text sources: at most this many sentences per label (da, sv, nb) from Debian's
    translated manual pages join the training split only (0: none;
    :mod:`modelyard.data.manpages`)."""
    extra_text_weight: float = 1.0
    """Text sources: loss weight, in (0, 1], of every training text that did not come
    from the labelled source (word lists, DDTP, manual pages, catalogues); real
    sentences weigh 1. 1.0: all texts weigh the same."""
    extra_text_weights: dict[str, float] = field(default_factory=dict)
    """Text sources: a loss weight in (0, 1] per added source, overriding
    ``data.extra_text_weight`` for that source's texts: keys ``word_lists``, ``ddtp``,
    ``manpages``, ``catalogues`` (``+data.extra_text_weights.manpages=0.3``)."""
    label_weights: dict[str, float] = field(default_factory=dict)
    """Text sources: a training-loss multiplier per label (``+data.label_weights.da=2``),
    on top of ``train.class_balance``'s weight; a label not named keeps 1. Balancing
    counts added text (word lists) too, so a label with few real sentences can still
    weigh little."""
    split_by: SplitBy = SplitBy.sentence
    """Text sources: the unit a split never divides. ``document`` keeps each document
    (CoNLL-U ``# newdoc id``, sentence-id prefix, else blocks of 20 sentences) whole in
    one split, so test scores are for documents the model never saw."""
    limit: int | None = None
    """Use at most this many examples per split (stratified); for quick runs and tests."""


@dataclass
class TextConfig:
    """How raw text becomes model input (text tasks): stored in the bundle as its
    :class:`modelyard.features.text.TextSpec` and applied identically when serving."""

    nfc: bool = True
    """Unicode NFC normalisation (composed and decomposed "å" become the same)."""
    lowercase: bool = True
    """Case-fold before extracting n-grams."""
    digits: bool = True
    """Map every decimal digit to "0" (numbers say little about a language)."""
    collapse_whitespace: bool = True
    """Runs of whitespace become one space; leading/trailing whitespace is removed."""
    word_boundaries: bool = True
    """Pad each word with a boundary mark so n-grams see word starts and ends."""
    ngram_min: int = 1
    """Shortest character n-gram."""
    ngram_max: int = 5
    """Longest character n-gram."""
    buckets: int = 262144
    """Hash buckets n-grams are mapped to (the embedding table's rows)."""
    max_chars: int = 512
    """Texts are cut to this many characters (after normalisation); the server says so."""
    min_confidence: float = 0.0
    """A prediction whose (calibrated, ``train.calibrate``) confidence is below this is
    answered as ``text.low_confidence_label`` instead; 0 never does. Stored in the
    bundle, so serving and offline prediction agree."""
    low_confidence_label: str = "unknown"
    """The answer for a text below ``text.min_confidence``: a class (``other``) or a
    label outside the classes (``unknown``)."""


@dataclass
class ModelConfig:
    name: str = "cnn"
    """Architecture name from modelyard.models: cnn (images) or fasttext (text)."""
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    """Output channels of each convolution block; each block halves the resolution."""
    convs_per_block: int = 2
    """3x3 convolutions (each with batch norm and ReLU) per block."""
    hidden: int = 128
    """Width of the fully connected layer before the classifier (the embedding)."""
    dropout: float = 0.25
    """Dropout before the classifier."""
    embedding_dim: int = 64
    """fasttext: width of each hashed n-gram's embedding (the mean of them is the text's
    representation)."""
    ngram_dropout: float = 0.0
    """fasttext: share of a text's n-grams dropped at random while training, so the
    model cannot lean on a few of them (helps on genres it has not seen)."""


class PruneMethod(Choice):
    """``train.prune``: what pruning does after the fit (then ``train.prune_finetune_epochs``
    of fine-tuning)."""

    none = "none"
    """No pruning."""
    channels = "channels"
    """Structured: remove whole convolution channels (lowest L1 norm of the BN-scaled
    filter), so the exported graph itself is smaller and faster."""
    magnitude = "magnitude"
    """Unstructured: zero the smallest weights of each conv and linear layer. The
    tensors stay dense, so ONNX Runtime on CPU runs no faster."""


@dataclass
class TrainConfig:
    max_epochs: int = 20
    """Upper bound on epochs; early stopping may end sooner."""
    batch_size: int = 64
    lr: float = 3.0e-3
    """Peak learning rate."""
    weight_decay: float = 1.0e-4
    optimizer: Optimizer = Optimizer.adamw
    """adam or adamw."""
    scheduler: Scheduler = Scheduler.onecycle
    """Learning-rate schedule: none, cosine, onecycle, step or plateau (halve when val
    loss stalls)."""
    min_epochs: int = 0
    """Epochs always trained before early stopping may act (a one-cycle schedule is
    noisy while its learning rate is high, so stopping then would be premature)."""
    early_stopping_patience: int = 5
    """Epochs without a better validation loss before training stops."""
    label_smoothing: float = 0.0
    """Cross-entropy label smoothing (0 disables); regularises small datasets."""
    augment: bool = True
    """Random small rotations, scalings and shifts of training images (image tasks)."""
    augment_degrees: float = 10.0
    """With ``augment``: largest rotation, in degrees either way, in [0, 180]."""
    augment_scale: float = 0.1
    """With ``augment``: the zoom is drawn from [1 - s, 1 + s]; s in [0, 1)."""
    augment_shift: float = 0.1
    """With ``augment``: largest shift along each axis, as a share of the image size,
    in [0, 0.5]."""
    augment_elastic: float = 0.0
    """With ``augment``: elastic distortion strength alpha, in pixels, >= 0 (0: off;
    Simard et al. used 34 with sigma 4 on MNIST). Added to the affine transform's
    sampling grid, so it costs no second resampling."""
    augment_elastic_sigma: float = 4.0
    """With ``augment_elastic``: smoothness of the distortion field, the standard
    deviation in pixels of its Gaussian; > 0."""
    augment_erasing: float = 0.0
    """With ``augment``: probability in [0, 1] that a training image gets one random
    rectangle (2-20% of its area) set to the background (cutout; 0: off)."""
    ema: float = 0.0
    """Decay of an exponential moving average of the weights, updated every step
    (0 disables; 0.99-0.999 typical). When on, validation, checkpoints and so the
    exported model use the averaged weights; the average is not kept in the
    checkpoint, so ``--resume`` restarts it from the resumed weights."""
    refit: bool = False
    """Text tasks: after the held-out fit is evaluated, fit again on train + val + test
    for the held-out fit's best number of epochs and register that model; the
    metrics stay the held-out fit's (the run and bundle say which data each used)."""
    prune: PruneMethod = PruneMethod.none
    """Prune the fitted model (:mod:`modelyard.train.prune`): none, channels (structured;
    model.name=cnn) or magnitude (unstructured). The run and bundle.json ``pruning``
    record what it did."""
    prune_amount: float = 0.5
    """Share in [0, 1) pruned from every layer: of its channels (rounded to the nearest
    channel), or of its weights (magnitude)."""
    prune_finetune_epochs: int = 3
    """Epochs of fine-tuning after pruning (the best by val loss is kept); 0: none."""
    calibrate: bool = False
    """Fit a temperature on the validation split after training and fold it into the
    exported classifier, so served probabilities are calibrated (argmax unchanged);
    the temperature and the test ECE before and after go to MLflow and the bundle."""
    punctuation_dropout: float = 0.0
    """Text models: share of training texts whose punctuation is removed, drawn anew
    each epoch (prediction always keeps it). A corpus's punctuation habits (spoken
    transcripts writing " ." apart, say) otherwise stand in for its label and fail on
    other genres."""
    class_balance: ClassBalance = ClassBalance.none
    """none, or weights: cross-entropy weighted n / (k * count) per class, so rare
    classes count as much as common ones."""
    precision: Precision = Precision["32"]
    """Numeric precision: 32, bf16-mixed or 16-mixed."""
    accelerator: Accelerator = Accelerator.cpu
    """cpu, gpu or auto."""
    devices: int = 1
    """Devices (CPU processes or GPUs) per node."""
    strategy: Strategy = Strategy.auto
    """Lightning strategy: auto (Lightning picks), ddp (one process per device, launched by
    re-running the command, or by torchrun/SLURM), ddp_spawn (processes forked from
    this one; slower start). Each DDP process sees batch_size rows per step, so the
    effective batch is batch_size x devices x num_nodes. CPU processes talk over gloo,
    GPUs over NCCL. Only rank 0 logs to MLflow, writes the bundle and registers."""
    num_nodes: int = 1
    """Machines taking part in a DDP run (each with ``devices`` processes)."""
    num_workers: int = 0
    """DataLoader worker processes (0 loads in the training process)."""
    threads: int = 0
    """torch intra-op threads while fitting. 0 (the default) uses the cores other
    processes leave free (train/threads.py): with one of two cores busy elsewhere, two
    threads train 3x slower than one. A deterministic run picks the count once at its
    start and tags it (``modelyard.train_threads``); otherwise it is re-checked every
    second. Small models (text) train fastest on 1."""
    seed: int = 42
    """Seeds torch, numpy and Python; same seed on CPU gives the same metrics."""
    deterministic: bool = True
    """Ask torch for deterministic kernels."""
    progress_bar: bool = True


@dataclass
class TrackingConfig:
    uri: str | None = None
    """MLflow tracking URI; empty uses MLFLOW_TRACKING_URI or the embedded SQLite store."""
    experiment: str | None = None
    """MLflow experiment; empty uses the task name."""
    register: bool = True
    """Register the bundle in the Model Registry with the alias ``candidate``."""


@dataclass
class ExportConfig:
    opset: int = 17
    """ONNX opset of the exported graph."""
    parity_atol: float = 1.0e-4
    """Largest absolute difference allowed between torch and ONNX Runtime probabilities."""
    parity_samples: int = 256
    """Real test samples the parity check runs on."""
    cost_repeats: int = 10
    """Timed ONNX Runtime calls (median taken) at batch 1 and at batch 32 for the
    bundle's cost report (:mod:`modelyard.export.cost`)."""


@dataclass
class TuneConfig:
    """``modelyard tune``: the Optuna search. The default space is in ``tune/default.yaml``."""

    space: dict[str, Any] = field(default_factory=dict)
    """Search space: ``<section>.<key>`` of this config -> ``{type: float|int, low, high,
    log, step}`` or ``{type: categorical, choices: [...]}``; e.g.
    ``train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}``."""
    metric: TuneMetric = TuneMetric.val_loss
    """What a trial scores, on the validation split through ONNX Runtime: val_loss
    (minimised), val_accuracy or val_macro_f1 (maximised)."""
    sampler: Sampler = Sampler.tpe
    """tpe (Bayesian) or random."""
    seed: int | None = None
    """Sampler seed. Give each worker of a shared study its own seed (or none), or
    they propose the same trials."""
    pruner: Pruner = Pruner.median
    """median (stop a trial whose epoch score is worse than the median of earlier
    trials at that epoch) or none."""
    pruner_startup_trials: int = 2
    """Trials that always run to the end before the pruner may act."""
    pruner_warmup_epochs: int = 1
    """Epochs of every trial that are never pruned."""


@dataclass
class PromoteConfig:
    """``modelyard promote``: the gate a challenger passes before it takes an alias."""

    metric: PromoteMetric = PromoteMetric.macro_f1
    """The score compared: macro_f1 or accuracy, on ``split`` through ONNX Runtime."""
    split: Split = Split.test
    """Dataset split both models are evaluated on (the challenger's task's data)."""
    min_improvement: float = 0.0
    """The challenger must score at least this much above the champion (0 allows a tie)."""
    min_score: float = 0.5
    """Absolute floor on the metric; the only score check when there is no champion."""
    max_recall_drop: float = 0.05
    """Largest drop of any class's recall against the champion (recall collapse)."""
    min_class_recall: float = 0.0
    """Absolute floor on every class's recall."""
    parity_atol: float = 1.0e-4
    """Largest torch vs ONNX Runtime probability difference allowed (from bundle.json)."""
    max_latency_ms: float = 100.0
    """Budget for one ONNX Runtime call on ``latency_batch_size`` rows (median)."""
    latency_batch_size: int = 32
    """Rows per measured batch."""
    latency_repeats: int = 20
    """Timed batches (after warm-up); the median is compared with the budget."""
    max_size_mb: float = 50.0
    """Budget for the ONNX graph on disk, in MB (10^6 bytes)."""
    max_macs: float = 0.0
    """Budget for multiply-adds per example, read from the bundle's cost report
    (bundle.json ``cost``); 0: no budget. A bundle without a cost report fails it."""
    min_shadow_requests: int = 0
    """Requests the challenger must have answered in shadow of the champion (the
    prediction log pairs them by request id) within ``shadow_since``; 0: no shadow
    evidence needed."""
    min_shadow_agreement: float = 0.0
    """Least share (0..1) of those requests on which challenger and champion agree,
    met by the lower bound of the agreement's 95% Wilson interval (as ``monitor
    compare`` prints it), not by the point."""
    shadow_since: str = "7d"
    """How far back the prediction log is read for shadow evidence."""
    prediction_log: str = ""
    """The prediction log's URL; empty: $MODELYARD_PREDICTION_LOG or the local SQLite."""


@dataclass
class DistillConfig:
    """``modelyard distill``: a student trained on a teacher's logits (train/distill.py)."""

    teacher: str = ""
    """The teacher: ``<name>@<alias>``, ``models:/<name>/<version>`` or a bundle folder
    (the command's ``teacher=``). Read by ``modelyard distill`` only."""
    temperature: float = 4.0
    """Softens both softmaxes (logits / T) in the KL term; must be positive."""
    alpha: float = 0.9
    """Weight in [0, 1] of the teacher's term; 1 - alpha weighs the labels'
    cross-entropy (0: plain training)."""


@dataclass
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    promote: PromoteConfig = field(default_factory=PromoteConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)


CHOICES: dict[str, tuple[Any, ...]] = {
    "task.kind": ("image", "text"),
    "data.channels": (1, 3),
    "model.name": ("cnn", "fasttext"),
}
"""Choices that are not a :class:`~modelyard.choices.Choice`: the trainable input kinds
(more are registered in :mod:`modelyard.modality`), the architectures (registered in
:mod:`modelyard.models`, which needs torch) and the channel counts (integers)."""


def _get(cfg: Config, dotted: str) -> Any:
    section, key = dotted.split(".")
    return getattr(getattr(cfg, section), key)


def _coerce_choices(cfg: Config) -> None:
    """Make every :class:`Choice` field a member, refusing a value outside its set.

    Composing does this already; a value put in afterwards (a bundle's recorded data
    settings, a test's ``DataConfig(source="digits")``) is a plain string until here.
    """
    for section, part in vars(cfg).items():
        for name, hint in get_type_hints(type(part)).items():
            if isinstance(hint, type) and issubclass(hint, Choice):
                value = getattr(part, name)
                try:
                    setattr(part, name, hint(value))
                except ValueError:
                    raise ConfigError(
                        invalid_choice(f"{section}.{name}", value, hint.values())
                    ) from None


def validate(cfg: Config) -> Config:
    """Check closed-set choices and ranges the type system cannot express."""
    _coerce_choices(cfg)
    for dotted, allowed in CHOICES.items():
        value = _get(cfg, dotted)
        if value not in allowed:
            raise ConfigError(invalid_choice(dotted, value, allowed))
    positive = (
        "data.image_size",
        "train.max_epochs",
        "train.batch_size",
        "train.devices",
        "train.num_nodes",
    )
    for dotted in positive:
        if _get(cfg, dotted) < 1:
            raise ConfigError(f"{dotted} must be at least 1, got {_get(cfg, dotted)}")
    for dotted in ("data.val_fraction", "data.test_fraction"):
        if not 0.0 < _get(cfg, dotted) < 0.5:
            raise ConfigError(f"{dotted} must be between 0 and 0.5, got {_get(cfg, dotted)}")
    if not 0.0 < cfg.data.extra_text_weight <= 1.0:
        raise ConfigError(
            f"data.extra_text_weight must be in (0, 1], got {cfg.data.extra_text_weight}"
        )
    for source, weight in cfg.data.extra_text_weights.items():
        if source not in EXTRA_TEXT_SOURCES:
            raise ConfigError(
                f"data.extra_text_weights.{source}: unknown source; "
                f"use one of {', '.join(EXTRA_TEXT_SOURCES)}"
            )
        if not 0.0 < weight <= 1.0:
            raise ConfigError(f"data.extra_text_weights.{source} must be in (0, 1], got {weight}")
    for label, weight in cfg.data.label_weights.items():
        if cfg.data.labels and label not in cfg.data.labels:
            raise ConfigError(
                f"data.label_weights.{label}: no such label; use one of "
                f"{', '.join(cfg.data.labels)}"
            )
        if not 0.0 < weight < math.inf:
            raise ConfigError(f"data.label_weights.{label} must be positive, got {weight}")
    if cfg.data.limit is not None and cfg.data.limit < 1:
        raise ConfigError(f"data.limit must be at least 1 (or null), got {cfg.data.limit}")
    # Training, export and promotion settings mean the same for every input kind.
    if cfg.train.lr <= 0:
        raise ConfigError(f"train.lr must be positive, got {cfg.train.lr}")
    if not 0.0 <= cfg.train.ema < 1.0:
        raise ConfigError(
            f"train.ema must be within [0, 1) (0 disables, 0.99 is typical), got {cfg.train.ema}"
        )
    for dotted, high, closed in (
        ("train.augment_degrees", 180.0, True),
        ("train.augment_scale", 1.0, False),
        ("train.augment_shift", 0.5, True),
    ):
        value = _get(cfg, dotted)
        if not (0.0 <= value <= high if closed else 0.0 <= value < high):
            bounds = f"[0, {high:g}]" if closed else f"[0, {high:g})"
            raise ConfigError(f"{dotted} must be within {bounds}, got {value}")
    if not 0.0 <= cfg.train.augment_elastic < math.inf:
        raise ConfigError(
            f"train.augment_elastic must be >= 0 (0: off), got {cfg.train.augment_elastic}"
        )
    if not 0.0 < cfg.train.augment_elastic_sigma < math.inf:
        raise ConfigError(
            f"train.augment_elastic_sigma must be positive, got {cfg.train.augment_elastic_sigma}"
        )
    if not 0.0 <= cfg.train.augment_erasing <= 1.0:
        raise ConfigError(
            f"train.augment_erasing must be within [0, 1], got {cfg.train.augment_erasing}"
        )
    if cfg.export.parity_atol <= 0:
        raise ConfigError("export.parity_atol must be positive")
    for dotted in ("promote.latency_batch_size", "promote.latency_repeats"):
        if _get(cfg, dotted) < 1:
            raise ConfigError(f"{dotted} must be at least 1, got {_get(cfg, dotted)}")
    for dotted in ("promote.max_latency_ms", "promote.max_size_mb", "promote.parity_atol"):
        if _get(cfg, dotted) <= 0:
            raise ConfigError(f"{dotted} must be positive, got {_get(cfg, dotted)}")
    if cfg.promote.min_shadow_requests < 0:
        raise ConfigError(
            f"promote.min_shadow_requests must be >= 0, got {cfg.promote.min_shadow_requests}"
        )
    if not 0.0 <= cfg.promote.min_shadow_agreement <= 1.0:
        raise ConfigError(
            "promote.min_shadow_agreement must be within 0..1, got "
            f"{cfg.promote.min_shadow_agreement}"
        )
    check_prune(cfg)
    if cfg.distill.temperature <= 0:
        raise ConfigError(f"distill.temperature must be positive, got {cfg.distill.temperature}")
    if not 0.0 <= cfg.distill.alpha <= 1.0:
        raise ConfigError(f"distill.alpha must be within 0..1, got {cfg.distill.alpha}")
    weighted = [
        name
        for name, used in (
            ("data.extra_text_weight below 1", cfg.data.extra_text_weight < 1.0),
            ("data.extra_text_weights", bool(cfg.data.extra_text_weights)),
            ("data.label_weights", bool(cfg.data.label_weights)),
        )
        if used
    ]
    if cfg.distill.teacher and weighted:
        raise ConfigError(
            f"{' and '.join(weighted)} cannot be used with modelyard distill (the teacher's "
            "loss weighs every example alike); leave every text and label at weight 1"
        )
    # The checks of the task's own kind (image sizes, text n-grams, ...) live with it.
    from modelyard.modality import modality_for

    modality = modality_for(cfg.task.kind)
    if cfg.data.label_weights and not modality.weighs_labels:
        raise ConfigError(
            f"data.label_weights is for text tasks, not task.kind={cfg.task.kind}; leave it empty"
        )
    modality.validate_config(cfg)
    return cfg


TEXT_SOURCES = ("conllu", "table")
TEXT_MODELS = ("fasttext",)

PATH_KEYS = ("data.path",)
"""Keys holding a local path: ``~`` and ``~user`` at their start mean a home folder."""


def expand_paths(cfg: Config) -> Config:
    """Expand a leading ``~`` in :data:`PATH_KEYS`, so the config (and MLflow's params)
    hold the folder actually read."""
    if cfg.data.path:
        cfg.data.path = os.path.expanduser(cfg.data.path)
    return cfg


_PATH_KINDS: dict[str, tuple[str, str]] = {
    "image_folder": ("image folder", "a folder with one sub-folder per class"),
    "conllu": (
        "data folder",
        "the folder holding the CoNLL-U files of data.files (or null to download them)",
    ),
    "table": ("data file", "a CSV, TSV, JSONL or Parquet file"),
}


def check_paths(cfg: Config) -> Config:
    """Check that ``data.path`` exists and is a folder or file as the source needs.

    Cheap and torch-free: the CLI calls it (through ``compose_config``) before the
    training stack loads, so a mistyped path fails in a second, not after the imports.
    """
    kind = _PATH_KINDS.get(cfg.data.source)
    if kind is None or not cfg.data.path:
        return cfg  # built-in sources ignore data.path; validate() asks for a needed one
    what, wanted = kind
    path = Path(cfg.data.path)
    wants_folder = cfg.data.source != "table"
    if not path.exists():
        problem = "does not exist"
    elif wants_folder and not path.is_dir():
        problem = "is a file, not a folder"
    elif not wants_folder and not path.is_file():
        problem = "is a folder, not a file"
    else:
        return cfg
    raise ConfigError(f"{what} {path} {problem}; set data.path to {wanted}")

"""The closed sets of strings that the config and the commands choose from, each defined
once, and :class:`Choice`, their base.

A :class:`Choice` is a ``str``-valued :class:`~enum.Enum`:

* OmegaConf checks a structured-config field typed with one while composing, and
  reads a YAML or override value by the member's *name*; Typer shows the members'
  *values* in ``--help`` and rejects others. Every member's name is therefore its
  value (``Precision`` has members named ``32`` and ``bf16-mixed``, made with the
  functional API), so both read the same spelling.
* A member *is* a ``str``: it compares equal to its value, and JSON, MLflow params
  (through ``str``) and f-strings hold the plain value, as before the Enum.

The config schema's fields are typed with the sets below, so OmegaConf refuses another
value while composing, and a command option over the same set (``evaluate --split``)
uses the same class. Sets a user extends by registration stay plain strings checked
where the registry is: ``task.kind`` (:mod:`modelyard.modality`) and ``model.name``
(:mod:`modelyard.models`). This module imports nothing heavy: the CLI reads it at start.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING


class Choice(str, Enum):
    """Base of every closed set of strings (subclass it; names equal values)."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def _missing_(cls, value: object) -> Choice | None:
        # YAML and Hydra read ``precision: 32`` as the int 32; the member is "32".
        if isinstance(value, int) and not isinstance(value, bool):
            return next((member for member in cls if member.value == str(value)), None)
        return None

    @classmethod
    def values(cls) -> list[str]:
        """The valid spellings, in declaration order."""
        return [str(member.value) for member in cls]


def invalid_choice(key: str, value: object, allowed: Iterable[object]) -> str:
    """The one-line complaint about a value outside a closed set, naming the valid ones."""
    return f"{key}={str(value)!r} is not a valid choice; choose one of " + ", ".join(
        str(a) for a in allowed
    )


class DataSource(Choice):
    """``data.source``: where the examples come from (a branch of :mod:`modelyard.data`)."""

    mnist5k = "mnist5k"
    digits = "digits"
    mnist = "mnist"
    fashion_mnist = "fashion_mnist"
    image_folder = "image_folder"
    conllu = "conllu"
    table = "table"


class SplitBy(Choice):
    """``data.split_by``: the unit a text split never divides."""

    sentence = "sentence"
    document = "document"


class Split(Choice):
    """A dataset split: ``promote.split``, ``evaluate --split``, ``quantize --split``."""

    train = "train"
    val = "val"
    test = "test"


class Optimizer(Choice):
    """``train.optimizer``."""

    adam = "adam"
    adamw = "adamw"


class Scheduler(Choice):
    """``train.scheduler``: the learning-rate schedule."""

    none = "none"
    cosine = "cosine"
    onecycle = "onecycle"
    step = "step"
    plateau = "plateau"


class ClassBalance(Choice):
    """``train.class_balance``."""

    none = "none"
    weights = "weights"


if TYPE_CHECKING:

    class Precision(Choice):
        """``train.precision``: Lightning's numeric precision: 32, bf16-mixed or 16-mixed."""

else:
    # Lightning's spellings are not identifiers, and OmegaConf reads a value by the
    # member's name: the functional API makes members named "32" and "bf16-mixed"
    # (mypy reads the functional API only on Enum itself, hence the stand-in above).
    Precision = Choice("Precision", [(p, p) for p in ("32", "bf16-mixed", "16-mixed")])


class Accelerator(Choice):
    """``train.accelerator``."""

    cpu = "cpu"
    gpu = "gpu"
    auto = "auto"


class Strategy(Choice):
    """``train.strategy``: Lightning's strategy (auto, or DDP launched or spawned)."""

    auto = "auto"
    ddp = "ddp"
    ddp_spawn = "ddp_spawn"


class TuneMetric(Choice):
    """``tune.metric``: what a trial scores on the validation split."""

    val_loss = "val_loss"
    val_accuracy = "val_accuracy"
    val_macro_f1 = "val_macro_f1"


class Sampler(Choice):
    """``tune.sampler``: Optuna's sampler."""

    tpe = "tpe"
    random = "random"


class Pruner(Choice):
    """``tune.pruner``: Optuna's trial pruner."""

    median = "median"
    none = "none"


class PromoteMetric(Choice):
    """``promote.metric``: the score the gate compares."""

    macro_f1 = "macro_f1"
    accuracy = "accuracy"


class PromotionTarget(Choice):
    """The aliases ``modelyard promote --to`` may move (``candidate`` is set by training)."""

    staging = "staging"
    production = "production"

"""``train.refit``: after the held-out fit is evaluated, fit again on every labelled
example and register that model.

The held-out fit (train split, early stopping on val) is what the metrics describe;
the production model should not leave a fifth of the scarce data unused, so a second
fit sees train + val + test for as many epochs as the held-out fit's best
checkpoint had. Its metrics cannot be measured (it has seen the test split), so the
bundle carries the held-out fit's metrics and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from modelyard.config.schema import Config
from modelyard.data.text import TextDataset, concatenate_splits, text_fingerprint
from modelyard.errors import ConfigError
from modelyard.modality import kinds, modality_for


@dataclass(frozen=True)
class Refit:
    model: torch.nn.Module
    record: dict[str, Any]
    """What the final fit used and where the metrics came from (MLflow, bundle)."""


def all_labelled(dataset: TextDataset) -> TextDataset:
    """``dataset`` whose train split is every labelled example (val and test kept as
    they are, for Lightning's validation loop only)."""
    merged = concatenate_splits((dataset.train, dataset.val, dataset.test))
    splits = {"train": merged, "val": dataset.val, "test": dataset.test}
    return replace(dataset, fingerprint=text_fingerprint(splits, dataset.class_names), train=merged)


def best_epochs(checkpoint: Path, trained: int) -> int:
    """Epochs up to and including the held-out fit's best checkpoint."""
    if not checkpoint.exists():
        return max(trained, 1)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return int(state.get("epoch", trained - 1)) + 1


def refit_on_all(
    cfg: Config,
    dataset: Any,
    epochs: int,
    fit: Callable[[Config, TextDataset], torch.nn.Module],
) -> Refit:
    """Fit ``cfg``'s model on every labelled example for ``epochs`` epochs, with
    early stopping off; ``fit`` trains and returns the model (the caller's trainer)."""
    if not modality_for(cfg.task.kind).refits:
        refitting = ", ".join(k for k in kinds() if modality_for(k).refits)
        raise ConfigError(f"train.refit is for {refitting} tasks; set train.refit=false")
    everything = all_labelled(dataset)
    train_cfg = replace(
        cfg.train, max_epochs=epochs, min_epochs=epochs, early_stopping_patience=epochs + 1
    )
    model = fit(replace(cfg, train=train_cfg), everything)
    record = {
        "final_fit_data": "all labelled data (train + val + test)",
        "final_fit_examples": len(everything.train),
        "final_fit_epochs": epochs,
        "final_fit_fingerprint": everything.fingerprint,
        "metrics_from": f"the held-out fit's test split (data.split_by={cfg.data.split_by})",
        "metrics_fit_examples": len(dataset.train),
    }
    return Refit(model, record)

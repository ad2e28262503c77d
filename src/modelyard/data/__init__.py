"""Data sources: each yields arrays, labels, class names and a content fingerprint.

Owns: downloads (sha256-checked), file formats (IDX, image folders, CoNLL-U, CSV,
JSONL), splits and fingerprints, for images, text and tables.

May import: ``config``, ``features``; never torch (training wraps these arrays).
"""

from __future__ import annotations

from pathlib import Path

from modelyard.config.schema import DataConfig
from modelyard.data.dataset import ArraySplit, Dataset, SourceData
from modelyard.data.split import make_splits
from modelyard.data.text import TextDataset, TextSource, TextSplit, make_text_splits
from modelyard.errors import ConfigError
from modelyard.features.image import ImageSpec, conform_images

__all__ = [
    "ArraySplit",
    "Dataset",
    "SourceData",
    "TextDataset",
    "TextSource",
    "TextSplit",
    "image_spec",
    "load_dataset",
    "load_source",
    "load_text_dataset",
    "load_text_source",
]


def image_spec(cfg: DataConfig) -> ImageSpec:
    """The preprocessing spec a data config implies (stored in the bundle)."""
    return ImageSpec(cfg.image_size, cfg.image_size, cfg.channels, cfg.mean, cfg.std)


def load_source(cfg: DataConfig) -> SourceData:
    """Load the raw examples of the configured source (download if needed)."""
    if cfg.source == "mnist5k":
        from modelyard.data.package import load_mnist5k

        return load_mnist5k()
    if cfg.source == "digits":
        from modelyard.data.package import load_digits

        return load_digits()
    if cfg.source in ("mnist", "fashion_mnist"):
        from modelyard.data.download import load_idx_dataset

        return load_idx_dataset(cfg.source)
    if cfg.source == "image_folder":
        from modelyard.data.image_folder import load_image_folder

        assert cfg.path is not None  # validate() guarantees it
        return load_image_folder(cfg.path, image_spec(cfg))
    raise ConfigError(f"unknown data.source '{cfg.source}'")


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load, conform to the configured image size/channels, and split deterministically."""
    source = load_source(cfg)
    spec = image_spec(cfg)
    source = SourceData(
        name=source.name,
        uri=source.uri,
        images=conform_images(source.images, spec),
        labels=source.labels,
        class_names=source.class_names,
        test_images=None
        if source.test_images is None
        else conform_images(source.test_images, spec),
        test_labels=source.test_labels,
    )
    return make_splits(source, cfg.val_fraction, cfg.test_fraction, cfg.split_seed, cfg.limit)


def load_text_source(cfg: DataConfig) -> TextSource:
    """Load every labelled text of the configured text source (download if needed)."""
    labels = list(cfg.labels) or None
    if cfg.source == "conllu":
        from modelyard.data.ud import load_ud

        return load_ud(dict(cfg.files), labels, cfg.path)
    if cfg.source == "table":
        from modelyard.data.table import load_table

        assert cfg.path is not None  # validate() guarantees it
        return load_table(Path(cfg.path), cfg.text_column, cfg.label_column, labels)
    raise ConfigError(f"data.source '{cfg.source}' is not a text source; use conllu or table")


def load_text_dataset(cfg: DataConfig) -> TextDataset:
    """Load a text source and split it: seeded, stratified train/val/test (by sentence or
    by document, ``data.split_by``)."""
    dataset = make_text_splits(
        load_text_source(cfg),
        cfg.val_fraction,
        cfg.test_fraction,
        cfg.split_seed,
        cfg.limit,
        split_by=cfg.split_by,
    )
    if cfg.word_lists and cfg.word_list_sentences > 0:
        from modelyard.data.text import with_extra_training
        from modelyard.data.wordlists import word_list_sentences

        extra = word_list_sentences(
            cfg.word_lists, dataset.class_names, cfg.word_list_sentences, cfg.split_seed
        )
        weight = cfg.extra_text_weights.get("word_lists")
        dataset = with_extra_training(dataset, extra, weight)
    if cfg.ddtp_sentences != 0:  # a negative count is refused there
        from modelyard.data.ddtp import ddtp_sentences
        from modelyard.data.text import with_extra_training

        extra = ddtp_sentences(dataset.class_names, cfg.ddtp_sentences, cfg.split_seed)
        weight = cfg.extra_text_weights.get("ddtp")
        dataset = with_extra_training(dataset, extra, weight)
    if cfg.manpage_sentences != 0:  # a negative count is refused there
        from modelyard.data.manpages import manpage_sentences
        from modelyard.data.text import with_extra_training

        extra = manpage_sentences(dataset.class_names, cfg.manpage_sentences, cfg.split_seed)
        weight = cfg.extra_text_weights.get("manpages")
        dataset = with_extra_training(dataset, extra, weight)
    return dataset

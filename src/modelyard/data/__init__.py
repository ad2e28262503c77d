"""Data sources: each yields arrays, labels, class names and a content fingerprint.

Owns: downloads (sha256-checked), file formats (IDX, image folders, CoNLL-U, CSV,
JSONL), splits and fingerprints, for images, text and tables.

May import: ``config``, ``features``; never torch (training wraps these arrays).
"""

from __future__ import annotations

from collections.abc import Callable
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
    "add_training_text",
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
    by document, ``data.split_by``), then append the configured added text (word lists,
    DDTP, manual pages) to the training split."""
    dataset = make_text_splits(
        load_text_source(cfg),
        cfg.val_fraction,
        cfg.test_fraction,
        cfg.split_seed,
        cfg.limit,
        split_by=cfg.split_by,
    )
    for source, load in _added_sources(cfg):
        dataset = add_training_text(dataset, cfg, source, load(dataset.class_names))
    return dataset


def add_training_text(
    dataset: TextDataset, cfg: DataConfig, source: str, extra: TextSplit
) -> TextDataset:
    """``dataset`` with ``extra`` in its training split at the loss weight of its
    ``source`` (a :data:`~modelyard.config.schema.EXTRA_TEXT_SOURCES` key): its
    ``data.extra_text_weights`` entry, else ``data.extra_text_weight``."""
    from modelyard.data.text import with_extra_training

    return with_extra_training(dataset, extra, cfg.extra_text_weights.get(source))


def _added_sources(cfg: DataConfig) -> list[tuple[str, Callable[[tuple[str, ...]], TextSplit]]]:
    """The configured added-text sources, in order: each source's weight key and what
    loads its texts for the dataset's class names."""
    sources: list[tuple[str, Callable[[tuple[str, ...]], TextSplit]]] = []
    if cfg.word_lists and cfg.word_list_sentences > 0:
        from modelyard.data.wordlists import word_list_sentences

        def words(names: tuple[str, ...]) -> TextSplit:
            return word_list_sentences(
                cfg.word_lists, names, cfg.word_list_sentences, cfg.split_seed
            )

        sources.append(("word_lists", words))
    if cfg.ddtp_sentences != 0:  # a negative count is refused there
        from modelyard.data.ddtp import ddtp_sentences

        sources.append(
            ("ddtp", lambda names: ddtp_sentences(names, cfg.ddtp_sentences, cfg.split_seed))
        )
    if cfg.manpage_sentences != 0:  # a negative count is refused there
        from modelyard.data.manpages import manpage_sentences

        sources.append(
            (
                "manpages",
                lambda names: manpage_sentences(names, cfg.manpage_sentences, cfg.split_seed),
            )
        )
    return sources

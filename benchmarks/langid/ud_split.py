"""The benchmark's sentences, read and split by modelyard itself.

The held-out split is modelyard's own (`task=langid_nordic`: its CoNLL-U reader,
file -> label table, de-duplication and seeded split by document), so every
detector is scored on exactly the sentences modelyard's model never saw.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

from modelyard.config.compose import compose_config
from modelyard.config.schema import DataConfig
from modelyard.data import load_text_dataset, load_text_source
from modelyard.data.text import TextSplit

TASK = "langid_nordic"

# Cross-genre sets: train without these files, test on every sentence in them.
HOLDOUTS: dict[str, tuple[str, ...]] = {
    "spoken Nynorsk (NynorskLIA)": (
        "no_nynorsklia-ud-train.conllu",
        "no_nynorsklia-ud-dev.conllu",
    ),
    "written Nynorsk (Nynorsk)": ("no_nynorsk-ud-dev.conllu",),
    "Faroese, unseen (FarPaHC)": ("fo_farpahc-ud-train.conllu", "fo_farpahc-ud-dev.conllu"),
    "Icelandic, unseen (Modern)": ("is_modern-ud-dev.conllu",),
}


@dataclass(frozen=True)
class Sentences:
    texts: list[str]
    labels: list[str]
    groups: list[str]
    """The file each sentence came from."""
    documents: list[str]
    """The document each sentence came from (file#document id), for bootstraps."""

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Split:
    train: Sentences
    val: Sentences
    test: Sentences
    fingerprint: str
    """modelyard's dataset fingerprint: equal to the bundle's iff trained on this split."""
    overrides: tuple[str, ...]


def task_overrides(data_dir: Path) -> list[str]:
    """The `modelyard train` overrides that read the UD files from ``data_dir``."""
    return [f"task={TASK}", f"data.path={Path(data_dir).resolve()}"]


def drop_files(data: DataConfig, exclude: Collection[str]) -> DataConfig:
    """``data`` without the files in ``exclude`` (the cross-genre runs)."""
    unknown = sorted(set(exclude) - set(data.files))
    if unknown:
        raise ValueError(
            f"cannot exclude {unknown}: not among the task's files {sorted(data.files)}"
        )
    return replace(data, files={f: lb for f, lb in data.files.items() if f not in exclude})


def data_config(
    data_dir: Path, exclude: Collection[str] = (), split_seed: int | None = None
) -> DataConfig:
    """The task's data config reading ``data_dir``, minus the files in ``exclude``
    (and with another split seed than the task's, when given)."""
    data = drop_files(compose_config(task_overrides(data_dir)).data, exclude)
    return data if split_seed is None else replace(data, split_seed=split_seed)


def _sentences(
    split: TextSplit, class_names: tuple[str, ...], document_of: dict[str, str]
) -> Sentences:
    texts = [str(t) for t in split.texts]
    return Sentences(
        texts=texts,
        labels=[class_names[i] for i in split.labels],
        groups=[str(g) for g in split.groups],
        documents=[document_of.get(t, t) for t in texts],
    )


def _document_of(data: DataConfig) -> dict[str, str]:
    """Each text's document, at its first occurrence (the one a split keeps)."""
    source = load_text_source(data)
    # getattr: throughput/latency A/B runs put an older modelyard (no documents) first.
    documents = getattr(source, "documents", None)
    documents = documents if documents is not None else source.texts
    found: dict[str, str] = {}
    for text, document in zip(source.texts, documents, strict=True):
        found.setdefault(str(text), str(document))
    return found


def load(data_dir: Path, exclude: Collection[str] = (), split_seed: int | None = None) -> Split:
    """modelyard's train/val/test split of the UD sentences (without ``exclude``)."""
    data = data_config(data_dir, exclude, split_seed)
    dataset = load_text_dataset(data)
    names = dataset.class_names
    document_of = _document_of(data)
    return Split(
        train=_sentences(dataset.train, names, document_of),
        val=_sentences(dataset.val, names, document_of),
        test=_sentences(dataset.test, names, document_of),
        fingerprint=dataset.fingerprint,
        overrides=tuple(task_overrides(data_dir)),
    )


def held_out(everything: Split, files: Collection[str], seen: Collection[str]) -> Sentences:
    """Every sentence from ``files`` (all three splits) whose text is not in ``seen``
    (the training data of the model under test), so none was trained on."""
    seen_set = set(seen)
    texts, labels, groups, documents = [], [], [], []
    for part in (everything.train, everything.val, everything.test):
        rows = zip(part.texts, part.labels, part.groups, part.documents, strict=True)
        for text, label, group, document in rows:
            if group in files and text not in seen_set:
                texts.append(text)
                labels.append(label)
                groups.append(group)
                documents.append(document)
    return Sentences(texts, labels, groups, documents)

"""CoNLL-U (Universal Dependencies): one example per sentence, from its ``# text =`` line.

Only the raw sentence is read; the token lines are ignored. A file's label comes
from the task config (``data.files``: file name -> label), because a treebank file
holds one language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from modelyard.data.text import TextSource, as_text_array
from modelyard.errors import DataError

_TEXT_PREFIX = "# text ="
_NEWDOC_PREFIX = "# newdoc id ="
_SENT_ID_PREFIX = "# sent_id ="
DOCUMENT_BLOCK = 20
"""Sentences per pseudo-document in files that mark no documents (see :func:`document_ids`)."""


def read_conllu_sentences(path: Path) -> list[str]:
    """The raw sentences (``# text = ...``) of a CoNLL-U file, in file order.

    Raises :class:`DataError` for a missing or non-UTF-8 file and for a file with no
    ``# text`` lines (not CoNLL-U, or a treebank without raw text).
    """
    return [text for text, _ in read_conllu_documents(path)]


def _id_prefix(sent_id: str) -> str | None:
    """The document part of a sentence id, where the id has one.

    ``WR-P-P-H-0000000105\\WR-...p.5.s.4`` (Alpino), ``ALTHINGI_..._G-33-4727062,1.1``
    (Icelandic Modern), ``1928.NTACTS.REL-BIB,.1-dev`` (FarPaHC) and ``b204.1``
    (Finnish TDT) name their document before the first ``\\`` or ``,``, or the last ``.``; plain
    counters (``015697``, ``dev-3``, ``dev-s1``) name none.
    """
    for separator in ("\\", ","):
        if separator in sent_id:
            return sent_id.split(separator)[0]
    head, dot, _ = sent_id.rpartition(".")
    if dot and head and not head.isdigit():
        return head
    return None


def document_ids(newdocs: list[str | None], sent_ids: list[str | None]) -> list[str]:
    """One document id per sentence of a file.

    In order of preference: the ``# newdoc id`` in force (a file that has any), the
    sentence-id prefix (a file where every id has one), else consecutive blocks of
    :data:`DOCUMENT_BLOCK` sentences. UD files keep a document's sentences together,
    so a block rarely spans two documents; it is the closest a file without document
    marks allows, and far closer than scattering neighbouring sentences over splits.
    """
    if any(doc is not None for doc in newdocs):
        current = "doc-0"
        out = []
        for doc in newdocs:
            current = doc if doc is not None else current
            out.append(current)
        return out
    prefixes = [_id_prefix(sent_id) if sent_id else None for sent_id in sent_ids]
    if prefixes and all(prefix is not None for prefix in prefixes):
        return [str(prefix) for prefix in prefixes]
    return [f"block-{i // DOCUMENT_BLOCK}" for i in range(len(sent_ids))]


def read_conllu_documents(path: Path) -> list[tuple[str, str]]:
    """``(sentence, document id)`` for every ``# text`` line of a CoNLL-U file, in order.

    Errors as :func:`read_conllu_sentences`; see :func:`document_ids` for the ids.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"CoNLL-U file {path} does not exist") from None
    except OSError as error:
        raise DataError(f"cannot read CoNLL-U file {path}: {error.strerror}") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 (byte {error.start}); CoNLL-U files must be UTF-8"
        ) from None
    sentences: list[str] = []
    newdocs: list[str | None] = []
    sent_ids: list[str | None] = []
    newdoc: str | None = None
    sent_id: str | None = None
    for line in content.splitlines():
        if line.startswith(_NEWDOC_PREFIX):
            newdoc = line[len(_NEWDOC_PREFIX) :].strip() or None
        elif line.startswith(_SENT_ID_PREFIX):
            sent_id = line[len(_SENT_ID_PREFIX) :].strip() or None
        elif line.startswith(_TEXT_PREFIX):
            text = line[len(_TEXT_PREFIX) :].strip()
            if text:
                sentences.append(text)
                newdocs.append(newdoc)
                sent_ids.append(sent_id)
            newdoc = sent_id = None
    if not sentences:
        raise DataError(
            f"{path} holds no '# text = ...' lines; is it a CoNLL-U file with raw sentences?"
        )
    return list(zip(sentences, document_ids(newdocs, sent_ids), strict=True))


def class_names_for(files: Mapping[str, str], labels: Sequence[str] | None) -> tuple[str, ...]:
    """The class order: ``labels`` when given (every file's label must be in it), else
    the files' labels sorted."""
    used = sorted(set(files.values()))
    if not labels:
        return tuple(used)
    unknown = [label for label in used if label not in labels]
    if unknown:
        raise DataError(
            f"data.files maps to label(s) {unknown} that are not in data.labels {list(labels)}"
        )
    return tuple(labels)


def load_conllu_files(
    folder: Path,
    files: Mapping[str, str],
    labels: Sequence[str] | None = None,
    name: str | None = None,
    uri: str | None = None,
) -> TextSource:
    """Read every sentence of ``folder/<file>`` for each ``file -> label`` in ``files``.

    Missing files are all named in one error, with what the folder does hold.
    """
    folder = Path(folder).expanduser()
    if not files:
        raise DataError("data.files is empty; map each CoNLL-U file name to its label")
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist; set data.path to the CoNLL-U folder")
    missing = sorted(f for f in files if not (folder / f).is_file())
    if missing:
        present = sorted(p.name for p in folder.glob("*.conllu"))
        raise DataError(
            f"{folder} lacks {', '.join(missing)}; it holds "
            f"{', '.join(present) if present else 'no .conllu files'}"
        )
    class_names = class_names_for(files, labels)
    index = {label: i for i, label in enumerate(class_names)}
    texts: list[str] = []
    label_ids: list[int] = []
    groups: list[str] = []
    documents: list[str] = []
    for file in sorted(files):
        read = read_conllu_documents(folder / file)
        texts += [text for text, _ in read]
        label_ids += [index[files[file]]] * len(read)
        groups += [file] * len(read)
        documents += [f"{file}#{doc}" for _, doc in read]
    return TextSource(
        name=name or folder.name,
        uri=uri or folder.resolve().as_uri(),
        texts=as_text_array(texts),
        labels=np.asarray(label_ids, dtype=np.int64),
        class_names=class_names,
        groups=as_text_array(groups),
        documents=as_text_array(documents),
    )

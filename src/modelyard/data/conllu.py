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


def read_conllu_sentences(path: Path) -> list[str]:
    """The raw sentences (``# text = ...``) of a CoNLL-U file, in file order.

    Raises :class:`DataError` for a missing or non-UTF-8 file and for a file with no
    ``# text`` lines (not CoNLL-U, or a treebank without raw text).
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
    sentences = []
    for line in content.splitlines():
        if line.startswith(_TEXT_PREFIX):
            text = line[len(_TEXT_PREFIX) :].strip()
            if text:
                sentences.append(text)
    if not sentences:
        raise DataError(
            f"{path} holds no '# text = ...' lines; is it a CoNLL-U file with raw sentences?"
        )
    return sentences


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
    for file in sorted(files):
        sentences = read_conllu_sentences(folder / file)
        texts += sentences
        label_ids += [index[files[file]]] * len(sentences)
        groups += [file] * len(sentences)
    return TextSource(
        name=name or folder.name,
        uri=uri or folder.resolve().as_uri(),
        texts=as_text_array(texts),
        labels=np.asarray(label_ids, dtype=np.int64),
        class_names=class_names,
        groups=as_text_array(groups),
    )

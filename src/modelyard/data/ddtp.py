"""Danish, Swedish and Bokmål prose from Debian's translated package descriptions.

The Debian Description Translation Project (DDTP) publishes, per release and
language, every translated package description as a ``Translation-<code>`` file in
the archive (``dists/<release>/main/i18n/``): deb822 paragraphs whose
``Description-<code>`` field holds a one-line synopsis and a few paragraphs of
running text written by volunteer translators. Bookworm has about 50,000 Danish
descriptions (the largest body of real Danish prose reachable here), a few hundred
Swedish ones and two in Bokmål; there is no Nynorsk file. The files are pinned by
the sha256 sums of the release's ``Release`` file (itself signed in ``InRelease``)
and fetched sha256-verified like the UD treebanks.

Each description is cut into units: prose paragraphs split into sentences
(:func:`sentences`), and list items (``* ...``, ``- ...``) kept whole. A unit is
kept when catalogues' :func:`~modelyard.data.catalogues.phrase` reads it as a phrase
(the one sentence filter langid's extra text shares) and no word in it looks like
code: a path, an option, an address (:func:`code_like`). Units are deduplicated per
label (descriptions of sibling packages repeat each other) and, for training, a
seeded sample of at most ``per_label`` per label is taken.

Licence: neither the DDTP's page (debian.org/international/l10n/ddtp) nor the files
name a licence for the translations. Each translates a description from a package's
``debian/control`` in Debian main, so it is best treated as under that package's
licence (DFSG-free; it varies by package). They are fetched when asked for and never
shipped with modelyard.
"""

from __future__ import annotations

import bz2
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from modelyard.data.catalogues import phrase
from modelyard.data.download import fetch_verified
from modelyard.data.text import TextSplit, as_text_array
from modelyard.errors import ConfigError, DataError
from modelyard.paths import data_dir

DDTP_BASE_URL_ENV = "MODELYARD_DDTP_BASE_URL"
"""Replaces the Debian mirror: one folder or URL holding the ``Translation-*.bz2``
files flat, e.g. ``file:///srv/ddtp/``."""
RELEASE = "bookworm"
_MIRROR = f"http://deb.debian.org/debian/dists/{RELEASE}/main/i18n/"


@dataclass(frozen=True)
class TranslationFile:
    """One language's pinned translation file."""

    language: str
    """The DDTP language code: the field is ``Description-<language>``."""
    filename: str
    sha256: str


FILES: dict[str, TranslationFile] = {
    # sha256 as listed in dists/bookworm/Release (InRelease signed by the Debian
    # Stable Release Key (12/bookworm), checked with gpgv on 2026-12-06).
    "da": TranslationFile(
        "da",
        "Translation-da.bz2",
        "2e721d886e2830ab7dfd2c57142bbcbdcca936a17f06c8354cdbcb1bd38c479d",
    ),
    "sv": TranslationFile(
        "sv",
        "Translation-sv.bz2",
        "fb8f1133612c16903eafded2adab93a2a58ab18935794a40c1dccd56e70129dd",
    ),
    "nb": TranslationFile(
        "nb",
        "Translation-nb.bz2",
        "fdec5fc00fe2d0e3c7730462f95273492d278eb8a6957c1b437969833366c217",
    ),
}
"""label -> its translation file; Debian has no Nynorsk (``nn``) translations."""


@dataclass(frozen=True)
class Description:
    package: str
    text: str
    """The field's value: the synopsis line, then the long description's lines as
    they stand in the file (leading space kept, `` .`` between paragraphs)."""


def parse_translation(text: str, language: str) -> list[Description]:
    """Every ``Description-<language>`` of a Translation file, in file order."""
    field = f"Description-{language}:"
    out: list[Description] = []
    for number, paragraph in enumerate(re.split(r"\n[ \t]*\n", text.strip()), start=1):
        package: str | None = None
        body: list[str] = []
        reading = False
        for line in paragraph.splitlines():
            if line.startswith((" ", "\t")):
                if reading:
                    body.append(line)
                continue
            reading = line.startswith(field)
            if line.startswith("Package:"):
                package = line[len("Package:") :].strip()
            elif reading:
                body = [line[len(field) :].strip()]
        if not body:
            continue
        if package is None:
            raise DataError(f"paragraph {number}: {field} without a Package: field")
        out.append(Description(package, "\n".join(body)))
    return out


_BULLET = re.compile(r"^\s*(?:[*+\-\u2022o]|\d+[.)])\s+")


def units(description: str) -> list[str]:
    """A description cut into its synopsis, prose paragraphs and list items, each as
    one line of text (continuation lines joined)."""
    synopsis, *lines = description.split("\n")
    out = [synopsis.strip()]
    current: list[str] = []
    in_item = False

    def close() -> None:
        nonlocal current
        if current:
            out.append(" ".join(current))
        current = []

    for line in lines:
        if line.strip() == ".":
            close()
            in_item = False
            continue
        if _BULLET.match(line):
            close()
            current, in_item = [_BULLET.sub("", line).strip()], True
        elif line.startswith("  ") and not in_item:
            close()  # a verbatim line (shown as is by apt): a unit of its own
            out.append(line.strip())
        else:
            if in_item and not line.startswith("  "):
                close()  # back to prose after a list
                in_item = False
            current.append(line.strip())
    close()
    return [unit for unit in out if unit]


_ABBREVIATIONS = frozenset(
    {"bl", "ca", "dvs", "el", "etc", "evt", "fx", "inkl", "jf", "mfl", "mht", "mm", "mv"}
    | {"nr", "osv", "pga", "resp", "st", "tex", "vs"}
)
"""Danish, Swedish and Norwegian abbreviations written without an inner dot
(``ca.``, ``osv.``, ``nr.``); no sentence ends after them."""
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[\"'»«“(]*[A-ZÆØÅÄÖÉ0-9])")


def sentences(paragraph: str) -> list[str]:
    """``paragraph`` split after ``.``, ``!`` or ``?`` where the next word starts with
    a capital or a digit, except after an abbreviation (a word with a dot inside,
    ``f.eks.``, or one of :data:`_ABBREVIATIONS`)."""
    out: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(paragraph):
        before = paragraph[start : match.start()]
        last = before.rsplit(None, 1)[-1] if before.split() else ""
        core = last[:-1]
        if last.endswith(".") and ("." in core or core.lower() in _ABBREVIATIONS):
            continue  # f.eks., bl.a., e.Kr., ca., osv.
        out.append(before.strip())
        start = match.end()
    out.append(paragraph[start:].strip())
    return [sentence for sentence in out if sentence]


_CODE = re.compile(r"[/\\=$@{}\[\]|`~<>#]|::|^--?\w|\.\w+\.\w|\w\(\)")
"""A word with one of these is a path, an option, a variable, an address or a call."""


def code_like(text: str) -> bool:
    """Whether any word of ``text`` looks like code rather than prose."""
    return any(_CODE.search(word) for word in text.split())


def description_texts(descriptions: Iterable[Description]) -> list[tuple[str, str]]:
    """(package, text) for every unit that reads as prose, first occurrence only."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for description in descriptions:
        for unit in units(description.text):
            for sentence in sentences(unit):
                if code_like(sentence):
                    continue
                text = phrase(sentence)
                if text is not None and text not in seen:
                    seen.add(text)
                    out.append((description.package, text))
    return out


def fetch_translation(entry: TranslationFile, folder: Path | None = None) -> Path:
    """The pinned ``Translation-<code>.bz2`` in ``folder`` (default: the data cache),
    sha256-verified; downloaded from Debian (or ``MODELYARD_DDTP_BASE_URL``) only
    when missing."""
    target = folder if folder is not None else data_dir() / "ddtp" / RELEASE
    mirror = os.environ.get(DDTP_BASE_URL_ENV) or _MIRROR
    return fetch_verified(
        "ddtp",
        entry.filename,
        (mirror,),
        entry.sha256,
        target,
        hint=f"Check the network (or {DDTP_BASE_URL_ENV}), or put {entry.filename} "
        f"(from {_MIRROR}) in {target}",
    )


def read_translation(path: Path, entry: TranslationFile) -> list[tuple[str, str]]:
    """(package, text) units of one fetched Translation file."""
    try:
        text = bz2.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, ValueError) as error:
        raise DataError(f"{path.name}: not a bzip2-compressed UTF-8 file: {error}") from None
    return description_texts(parse_translation(text, entry.language))


def ddtp_sentences(
    class_names: Sequence[str],
    per_label: int,
    seed: int,
    folder: Path | None = None,
    files: Mapping[str, TranslationFile] | None = None,
) -> TextSplit:
    """Up to ``per_label`` DDTP texts (seeded sample) for every class that has a
    translation file, as extra training text; groups ``ddtp:<package>``."""
    table = dict(files if files is not None else FILES)
    return sampled_texts(
        class_names,
        per_label,
        seed,
        {label: partial(_translation_texts, entry, folder) for label, entry in table.items()},
        source="ddtp",
        option="data.ddtp_sentences",
        missing=("DDTP", "translations"),
    )


def _translation_texts(entry: TranslationFile, folder: Path | None) -> list[tuple[str, str]]:
    return read_translation(fetch_translation(entry, folder), entry)


def sampled_texts(
    class_names: Sequence[str],
    per_label: int,
    seed: int,
    readers: Mapping[str, Callable[[], list[tuple[str, str]]]],
    source: str,
    option: str,
    missing: tuple[str, str],
) -> TextSplit:
    """Up to ``per_label`` (unit, text) items of each class that has a reader (a seeded
    sample kept in order, classes in ``class_names`` order), as a split grouped
    ``<source>:<unit>``. The one sampler of the extra-text sources (DDTP descriptions,
    manual pages): a ConfigError naming ``option`` (the count's config key) when
    ``per_label`` is negative, and a DataError when no class has any text, worded
    with ``missing``: (what the text is called, what holds it per class)."""
    if per_label < 0:
        raise ConfigError(f"{option} must be at least 0 (0: none), got {per_label}")
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[int] = []
    groups: list[str] = []
    for label in [name for name in class_names if name in readers]:
        items = readers[label]()
        if len(items) > per_label:
            items = [items[i] for i in sorted(rng.choice(len(items), per_label, replace=False))]
        texts += [text for _, text in items]
        groups += [f"{source}:{unit}" for unit, _ in items]
        labels += [list(class_names).index(label)] * len(items)
    if not texts:
        what, holders = missing
        raise DataError(
            f"no {what} text for the classes {', '.join(class_names)}; "
            f"{holders} exist for {', '.join(sorted(readers))}"
        )
    return TextSplit(
        as_text_array(texts), np.asarray(labels, dtype=np.int64), as_text_array(groups)
    )

"""Danish, Swedish and Bokmål prose from Debian's translated manual pages.

The manpages-l10n project translates manual pages (coreutils, grep, make, grub, the
man-pages intro pages and more) and Debian ships each language as a package:
``manpages-da``, ``manpages-sv`` and ``manpages-nb`` (there is no Nynorsk one). Their
descriptions and option texts are running prose written by translators, another
genre than UD's news and fiction, and unlike the DDTP's package descriptions
(:mod:`modelyard.data.ddtp`) it comes in Danish, Swedish and Bokmål alike, so no one
language alone gets "software prose".

The packages are pinned (Debian 12, sha256) and fetched sha256-verified like the
catalogues. Each page's roff source is reduced to paragraphs of plain text
(:func:`paragraphs`: request lines end a paragraph, font and character escapes are
removed, no-fill and table blocks, which hold code and examples, are skipped), cut
into sentences and filtered as the DDTP text is (:func:`~modelyard.data.ddtp.sentences`,
:func:`~modelyard.data.ddtp.code_like`, :func:`~modelyard.data.catalogues.phrase`),
deduplicated per label.

Licence: manpages-l10n's translations are GPL-3.0-or-later (the packages'
``copyright`` files). They are fetched when asked for and never shipped with modelyard.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

from modelyard.data.catalogues import deb_data, phrase
from modelyard.data.ddtp import code_like, sampled_texts, sentences
from modelyard.data.download import fetch_verified
from modelyard.data.text import TextSplit
from modelyard.errors import DataError
from modelyard.paths import data_dir

MANPAGES_BASE_URL_ENV = "MODELYARD_MANPAGES_BASE_URL"
"""Replaces the Debian mirror: one folder or URL holding the ``.deb`` files flat,
e.g. ``file:///srv/debs/``."""
_POOL = "http://deb.debian.org/debian/pool/main/m/manpages-l10n/"


@dataclass(frozen=True)
class ManpagePackage:
    """One language's pinned package of translated manual pages."""

    language: str
    """The folder under ``usr/share/man``."""
    filename: str
    sha256: str


PACKAGES: dict[str, ManpagePackage] = {
    # Debian 12 (bookworm), manpages-l10n 4.18.1-1, as `apt-get download` fetched them
    # on 2026-12-06 (sha256 of the files, which apt checked against the archive's index).
    "da": ManpagePackage(
        "da",
        "manpages-da_4.18.1-1_all.deb",
        "977b0dee2ab0d0315cc8f0864dd1c89473ece240033e1651a1c23a62e66afff4",
    ),
    "sv": ManpagePackage(
        "sv",
        "manpages-sv_4.18.1-1_all.deb",
        "12b386ce4e11fadf3c05b55a813c81df129d244606ba3383da586d39a4a8cca4",
    ),
    "nb": ManpagePackage(
        "nb",
        "manpages-nb_4.18.1-1_all.deb",
        "62f43554a179199b9cb95ecdf390f81e2eb779ff3f535c6b944ce0a647f15bb3",
    ),
}
"""label -> its package; Debian has no Nynorsk (``nn``) manual pages."""

# --- roff to text -------------------------------------------------------------------------

_NAMED = {
    "aq": "'",
    "cq": "'",
    "oq": "'",
    "lq": '"',
    "rq": '"',
    "dq": '"',
    "em": "-",
    "en": "-",
    "hy": "-",
    "mi": "-",
    "pl": "+",
    "co": "©",
}
"""roff's named characters that occur in running text; any other becomes nothing."""
_ESCAPE = re.compile(
    r"\\(?:f(?:\[[^\]]*\]|\(..|.)"  # font: \fB, \f(CW, \f[B]
    r"|s[+-]?\d+"  # size
    r"|\*(?:\(..|\[[^\]]*\]|.)"  # string: \*(Tm
    r"|\((..)|\[([^\]]*)\]"  # character: \(aq, \[em]
    r"|(.))"  # one character: \-, \e, \&, \ ...
)
_TEXT_REQUESTS = frozenset({"B", "I", "BR", "IR", "RB", "RI", "BI", "IB", "SM", "SB"})
"""Requests whose arguments are text in the running paragraph (font changes)."""
_NO_FILL = {"nf": "fi", "EX": "EE", "TS": "TE", "EQ": "EN"}
"""Blocks of code, examples, tables and equations: start -> end request."""


def unescape(line: str) -> str:
    """``line`` with roff escapes replaced by the characters they stand for (``\\-``
    ``-``, ``\\(aq`` ``'``) or removed (fonts, sizes, strings, zero-width ``\\&``)."""

    def replace(match: re.Match[str]) -> str:
        named = match.group(1) or match.group(2)
        if named is not None:
            return _NAMED.get(named, "")
        one = match.group(3)
        if one == "-":
            return "-"
        if one == "e" or one == "\\":
            return "\\"
        if one in (" ", "~", "0"):
            return " "
        return ""

    return _ESCAPE.sub(replace, line)


def _arguments(text: str) -> str:
    """A request's arguments as words (quoted arguments keep their spaces)."""
    return " ".join(a or b for a, b in re.findall(r'"([^"]*)"|(\S+)', text))


def paragraphs(source: str) -> list[str]:
    """The plain-text paragraphs of a roff page: text lines and font-change requests'
    arguments run together; any other request (``.PP``, ``.TP``, ``.SH``, ``.br``...)
    or an empty line ends a paragraph; the tag line after ``.TP`` (an option, mostly)
    is a paragraph of its own; no-fill and table blocks are left out."""
    out: list[str] = []
    current: list[str] = []
    skip_until: str | None = None
    tag = False

    def close() -> None:
        if current:
            out.append(" ".join(current))
            current.clear()

    def add(text: str) -> None:
        nonlocal tag
        current.append(text)
        if tag:
            close()
            tag = False

    for line in source.splitlines():
        if line.startswith((".", "'")):
            request, _, rest = line[1:].strip().partition(" ")
            if skip_until is not None:
                skip_until = None if request == skip_until else skip_until
            elif request in _NO_FILL:
                close()
                skip_until = _NO_FILL[request]
            elif request in _TEXT_REQUESTS and rest.strip():
                add(unescape(_arguments(rest)).strip())
            else:
                close()
                tag = request == "TP"
            continue
        if skip_until is not None:
            continue
        text = unescape(line).strip()
        if text:
            add(text)
        else:
            close()
    close()
    return [re.sub(r"\s+", " ", paragraph).strip() for paragraph in out]


def page_texts(source: str) -> list[str]:
    """The sentences of one page that read as prose (see the module docstring)."""
    out: list[str] = []
    for paragraph in paragraphs(source):
        for sentence in sentences(paragraph):
            if code_like(sentence):
                continue
            text = phrase(sentence)
            if text is not None:
                out.append(text)
    return out


# --- packages -----------------------------------------------------------------------------


def _pages(path: Path, language: str) -> Iterator[tuple[str, str]]:
    """(page name, roff source) of every page under ``usr/share/man/<language>/``."""
    prefix = ("usr", "share", "man", language)
    with deb_data(path) as archive:
        for member in archive:
            parts = PurePosixPath(member.name.removeprefix("./")).parts
            if not member.isfile() or parts[:4] != prefix or not parts[-1].endswith(".gz"):
                continue
            handle = archive.extractfile(member)
            assert handle is not None  # a regular file
            try:
                source = gzip.decompress(handle.read()).decode("utf-8", "replace")
            except (OSError, EOFError) as error:
                raise DataError(f"{path.name}: {member.name} is not gzip: {error}") from None
            yield parts[-1].removesuffix(".gz"), source


def read_package(path: Path, package: ManpagePackage) -> list[tuple[str, str]]:
    """(page, text) for every prose sentence of a fetched package, first occurrence only."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for page, source in sorted(_pages(path, package.language)):
        for text in page_texts(source):
            if text not in seen:
                seen.add(text)
                out.append((page, text))
    return out


def fetch_package(package: ManpagePackage, folder: Path | None = None) -> Path:
    """The pinned ``.deb`` in ``folder`` (default: the data cache), sha256-verified;
    downloaded from Debian (or ``MODELYARD_MANPAGES_BASE_URL``) only when missing."""
    target = folder if folder is not None else data_dir() / "manpages"
    mirror = os.environ.get(MANPAGES_BASE_URL_ENV) or _POOL
    return fetch_verified(
        "manpages",
        package.filename,
        (mirror,),
        package.sha256,
        target,
        hint=f"Check the network (or {MANPAGES_BASE_URL_ENV}), or put {package.filename} "
        f"(from {_POOL}) in {target}",
    )


def manpage_sentences(
    class_names: Sequence[str],
    per_label: int,
    seed: int,
    folder: Path | None = None,
    packages: Mapping[str, ManpagePackage] | None = None,
) -> TextSplit:
    """Up to ``per_label`` manual-page sentences (seeded sample) for every class that
    has a package, as extra training text; groups ``manpages:<page>``."""
    table = dict(packages if packages is not None else PACKAGES)
    return sampled_texts(
        class_names,
        per_label,
        seed,
        {label: partial(_package_texts, entry, folder) for label, entry in table.items()},
        source="manpages",
        option="data.manpage_sentences",
        missing=("manual-page", "packages"),
    )


def _package_texts(package: ManpagePackage, folder: Path | None) -> list[tuple[str, str]]:
    return read_package(fetch_package(package, folder), package)

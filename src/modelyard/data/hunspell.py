"""Word forms of a Hunspell dictionary: which words a language's spelling admits.

``data.word_lists`` uses the Norwegian dictionaries to tell Nynorsk from Bokmål
words (:mod:`modelyard.data.wordlists`): wordfreq has no Nynorsk list, and its
Bokmål list holds Nynorsk words too. Suffix and prefix rules are expanded (not
compounds); forms of capitalised stems (names) are kept apart, as :attr:`Forms.names`.

The dictionaries are the LibreOffice/Hunspell Norwegian ones (Norsk
Ordbank-based, GPL-2.0) as packaged on npm (``dictionary-nb``, ``dictionary-nn``),
fetched once at a pinned version and used only when the tarball's sha256 matches.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modelyard.data.download import fetch_verified
from modelyard.errors import DataError
from modelyard.paths import data_dir


@dataclass(frozen=True)
class Dictionary:
    package: str
    version: str
    sha256: str


DICTIONARIES: dict[str, Dictionary] = {
    "nb": Dictionary(
        "dictionary-nb", "3.0.0", "48f8f690e286edb6f7e55170aedc5a944d64d4b374cbc10bc454c3ea9e73d6f0"
    ),
    "nn": Dictionary(
        "dictionary-nn", "2.2.0", "9840b500d4fd9870feee5bbdcd59918c1324527a6fb5e3b55103d85acb4caee0"
    ),
}
"""Language -> npm package (GPL-2.0 data) and the sha256 of its pinned tarball."""
REGISTRY = "https://registry.npmjs.org/"


@dataclass(frozen=True)
class _Affix:
    strip: str
    add: str
    condition: re.Pattern[str]
    """Matched against the stem's end (suffix) or start (prefix)."""

    def apply(self, stem: str, suffix: bool) -> str | None:
        if not self.condition.search(stem):
            return None
        if suffix:
            if not stem.endswith(self.strip):
                return None
            return stem[: len(stem) - len(self.strip)] + self.add
        if not stem.startswith(self.strip):
            return None
        return self.add + stem[len(self.strip) :]


def _rules(aff: Iterable[str], kind: str) -> dict[str, list[_Affix]]:
    """Flag -> its ``SFX`` or ``PFX`` rules (single-character flags, as both Norwegian
    files use)."""
    rules: dict[str, list[_Affix]] = {}
    for line in aff:
        parts = line.split()
        if len(parts) < 5 or parts[0] != kind:
            continue  # not a rule (the header line of a flag has 4 fields)
        flag, strip, add, condition = parts[1:5]
        add = add.split("/", 1)[0]
        pattern = "" if condition == "." else condition
        rules.setdefault(flag, []).append(
            _Affix(
                strip="" if strip == "0" else strip,
                add="" if add == "0" else add,
                condition=re.compile(pattern + "$" if kind == "SFX" else "^" + pattern),
            )
        )
    return rules


@dataclass(frozen=True)
class Forms:
    """A dictionary's word forms, lower-cased."""

    words: frozenset[str]
    """Forms of lower-case stems: the language's own words."""
    names: frozenset[str]
    """Forms of capitalised stems (places, people, brands): not evidence of a standard."""

    def exclusive(self, other: Forms) -> frozenset[str]:
        """Words of this dictionary that ``other`` has neither as a word nor as a name."""
        return self.words - other.words - other.names


def expand(dic: Iterable[str], aff: Iterable[str]) -> Forms:
    """Every stem of a ``.dic`` file's lines with its suffixed and prefixed forms (a
    prefix also goes before each suffixed form)."""
    lines = list(aff)
    suffixes, prefixes = _rules(lines, "SFX"), _rules(lines, "PFX")
    forms: set[str] = set()
    names: set[str] = set()
    for number, line in enumerate(dic):
        entry = line.strip()
        if not entry or (number == 0 and entry.isdigit()):  # the first line is a count
            continue
        stem, _, flags = entry.partition("/")
        words = {stem}
        for flag in flags:
            for rule in suffixes.get(flag, ()):
                word = rule.apply(stem, suffix=True)
                if word:
                    words.add(word)
        for flag in flags:
            for rule in prefixes.get(flag, ()):
                words |= {w for w in (rule.apply(s, suffix=False) for s in words) if w}
        (forms if stem[:1].islower() else names).update(w.lower() for w in words)
    return Forms(frozenset(forms), frozenset(names))


def read_tarball(path: Path) -> Forms:
    """The word forms of an npm ``dictionary-*`` tarball (``package/index.dic``/``.aff``)."""
    try:
        with tarfile.open(path) as tar:
            texts = {}
            for name in ("index.dic", "index.aff"):
                member = tar.extractfile(f"package/{name}")
                if member is None:
                    raise KeyError(name)
                texts[name] = member.read().decode("utf-8")
    except (OSError, KeyError, tarfile.TarError) as err:
        raise DataError(f"{path} is not a Hunspell dictionary tarball ({err})") from None
    return expand(texts["index.dic"].splitlines(), texts["index.aff"].splitlines())


def dictionary_forms(language: str, folder: Path | None = None) -> Forms:
    """The word forms of ``language``'s pinned dictionary, fetched into ``folder``
    (default: the data cache's ``hunspell/``) once and verified by sha256."""
    if language not in DICTIONARIES:
        raise DataError(
            f"no Hunspell dictionary for '{language}'; there are: {', '.join(DICTIONARIES)}"
        )
    entry = DICTIONARIES[language]
    fname = f"{entry.package}-{entry.version}.tgz"
    path = fetch_verified(
        entry.package,
        fname,
        (f"{REGISTRY}{entry.package}/-/",),
        entry.sha256,
        folder or data_dir() / "hunspell",
        hint=f"or put {fname} (`npm pack {entry.package}@{entry.version}`) in that folder",
    )
    return read_tarball(path)

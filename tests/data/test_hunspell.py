"""Hunspell dictionaries: which word forms each Norwegian standard admits (offline)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tests.data.extra_sources import tar_bytes

from modelyard.data import hunspell
from modelyard.data.hunspell import Dictionary, dictionary_forms, expand
from modelyard.errors import DataError

AFF = """SET UTF-8
PFX a Y 1
PFX a   0     u           .

SFX A Y 2
SFX A   0     ar          [^e]
SFX A   e     ar          e
"""


def test_stems_expand_with_their_suffix_and_prefix_rules() -> None:
    forms = expand(["3", "bil/A", "jente/A", "mogleg/a", "Oslo"], AFF.splitlines())
    assert forms.words == {"bil", "bilar", "jente", "jentar", "mogleg", "umogleg"}
    assert forms.names == {"oslo"}  # a capitalised stem is a name, not evidence


def test_exclusive_words_ignore_the_other_dictionarys_names() -> None:
    nn = expand(["1", "ikkje", "bil/A", "berlin"], AFF.splitlines())
    nb = expand(["1", "ikke", "bil", "Berlin"], AFF.splitlines())
    assert nn.exclusive(nb) == {"ikkje", "bilar"}
    assert nb.exclusive(nn) == {"ikke"}


def write_tarball(folder: Path, name: str, dic: str, aff: str = AFF) -> str:
    """An npm-style ``dictionary-*`` tarball in ``folder``; returns its sha256."""
    members = {"package/index.dic": dic, "package/index.aff": aff}
    blob = tar_bytes({member: text.encode("utf-8") for member, text in members.items()}, "w:gz")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(blob)
    return hashlib.sha256(blob).hexdigest()


def test_a_pinned_tarball_is_read_only_when_its_checksum_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = write_tarball(tmp_path, "dictionary-nn-9.9.9.tgz", "1\nikkje\n")
    monkeypatch.setitem(hunspell.DICTIONARIES, "nn", Dictionary("dictionary-nn", "9.9.9", sha))
    assert dictionary_forms("nn", tmp_path).words == {"ikkje"}
    # A different file under the pinned name is not used: it would be re-fetched, and
    # with the registry unreachable (a file:// mirror that is empty) that fails clearly.
    write_tarball(tmp_path, "dictionary-nn-9.9.9.tgz", "1\nikke\n")
    monkeypatch.setattr(hunspell, "REGISTRY", (tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(DataError, match="dictionary-nn"):
        dictionary_forms("nn", tmp_path)
    with pytest.raises(DataError, match="no Hunspell dictionary for 'da'"):
        dictionary_forms("da", tmp_path)

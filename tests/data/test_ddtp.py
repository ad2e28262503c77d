"""Debian's translated package descriptions as langid text: the deb822 parser, the cut
into sentences and list items, the code filter, and sha256-verified fetches (made from
small files written here; no network)."""

from __future__ import annotations

import bz2
import hashlib
from pathlib import Path

import numpy as np
import pytest
from tests.data.extra_sources import check_joins_training_split_only, local_mirror

from modelyard.data import ddtp
from modelyard.data.ddtp import (
    FILES,
    TranslationFile,
    code_like,
    ddtp_sentences,
    description_texts,
    parse_translation,
    sentences,
    units,
)
from modelyard.errors import ConfigError, DataError

DA = """Package: 0ad
Description-md5: d943033bedada21853d2ae54a2578a7b
Description-da: Realtids strategispil med historisk krigsførelse
 0 A.D. er et frit krigsspil for flere platforme. Det er et realtids
 strategispil, f.eks. med fokus på årene mellem 500 f.Kr. og 500 e.Kr. Spillet
 er meget ambitiøst.
 .
 Denne pakke indeholder hoveddatafilerne krævet af spillet.

Package: 0ad-data
Description-md5: 26581e685027d5ae84824362a4ba59ee
Description-da: Realtids strategispil med historisk krigsførelse - data
 Denne pakke indeholder hoveddatafilerne krævet af spillet.
 .
 Funktioner:
  * understøttelse af mange forskellige filformater
    på tværs af platforme
  * kan skaleres i stor udstrækning
 Se /usr/share/doc/0ad-data/README.Debian for at læse mere om det.
 .
   $ 0ad --start-spillet nu med det samme

Package: dpkg
Description-md5: 0123456789abcdef0123456789abcdef
"""


def test_parse_translation_reads_package_and_the_whole_field() -> None:
    found = parse_translation(DA, "da")
    assert [d.package for d in found] == ["0ad", "0ad-data"]
    assert found[0].text.splitlines()[0] == "Realtids strategispil med historisk krigsførelse"
    assert (
        found[0].text.splitlines()[-1]
        == " Denne pakke indeholder hoveddatafilerne krævet af spillet."
    )
    assert parse_translation(DA, "sv") == []
    with pytest.raises(DataError, match="without a Package"):
        parse_translation("Description-da: et fritstående felt uden pakke\n", "da")


def test_units_keep_list_items_whole_and_verbatim_lines_apart() -> None:
    found = units(parse_translation(DA, "da")[1].text)
    assert found == [
        "Realtids strategispil med historisk krigsførelse - data",
        "Denne pakke indeholder hoveddatafilerne krævet af spillet.",
        "Funktioner:",
        "understøttelse af mange forskellige filformater på tværs af platforme",
        "kan skaleres i stor udstrækning",
        "Se /usr/share/doc/0ad-data/README.Debian for at læse mere om det.",
        "$ 0ad --start-spillet nu med det samme",
    ]


def test_sentences_split_at_capitals_but_not_after_abbreviations() -> None:
    text = (
        "Det er et realtids strategispil, f.eks. med fokus på årene mellem 500 f.Kr. "
        "og 500 e.Kr. Spillet er ambitiøst! Koster det ca. 10 kr.? Nej. Det gør det ikke."
    )
    assert sentences(text) == [
        "Det er et realtids strategispil, f.eks. med fokus på årene mellem 500 f.Kr. "
        "og 500 e.Kr. Spillet er ambitiøst!",
        "Koster det ca. 10 kr.?",
        "Nej.",
        "Det gør det ikke.",
    ]


def test_code_like_words_are_paths_options_and_variables() -> None:
    assert code_like("Se /usr/share/doc for mere")
    assert code_like("Kør programmet med --verbose for detaljer")
    assert code_like("Sæt $HOME eller FOO=1 først")
    assert not code_like("Et 3D-spil med IPv4 og 0 A.D. og mere, (også) nu.")


def test_description_texts_filter_code_and_short_units_and_dedupe() -> None:
    texts = description_texts(parse_translation(DA, "da"))
    assert ("0ad", "Denne pakke indeholder hoveddatafilerne krævet af spillet.") in texts
    assert [t for _, t in texts].count(
        "Denne pakke indeholder hoveddatafilerne krævet af spillet."
    ) == 1  # the sibling package repeats it: kept once, with the first package
    assert ("0ad-data", "kan skaleres i stor udstrækning") in texts
    assert not any("/usr/share" in t or "--start" in t for _, t in texts)
    assert not any(t == "Funktioner:" or t == "Nej." for _, t in texts)  # < 4 words


def _mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> TranslationFile:
    mirror = local_mirror(tmp_path, monkeypatch, ddtp.DDTP_BASE_URL_ENV)
    blob = bz2.compress(body.encode("utf-8"))
    (mirror / "Translation-da.bz2").write_bytes(blob)
    return TranslationFile("da", "Translation-da.bz2", hashlib.sha256(blob).hexdigest())


def test_ddtp_sentences_label_sample_and_group_by_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _mirror(tmp_path, monkeypatch, DA)
    classes = ("da", "sv", "nb", "nn", "other")
    everything = ddtp_sentences(classes, 100, seed=0, files={"da": entry})
    assert set(everything.labels.tolist()) == {0}  # only da has a file here
    assert all(group.startswith("ddtp:0ad") for group in everything.groups)
    assert (tmp_path / "cache" / "ddtp" / ddtp.RELEASE / "Translation-da.bz2").is_file()
    capped = ddtp_sentences(classes, 2, seed=0, files={"da": entry})
    assert len(capped) == 2 and set(capped.texts) <= set(everything.texts)
    again = ddtp_sentences(classes, 2, seed=0, files={"da": entry})
    assert np.array_equal(capped.texts, again.texts)  # seeded
    with pytest.raises(ConfigError, match="at least 0"):
        ddtp_sentences(classes, -1, seed=0, files={"da": entry})
    with pytest.raises(DataError, match="no DDTP text"):
        ddtp_sentences(("nn", "other"), 10, seed=0, files={"da": entry})


def test_a_file_that_does_not_match_its_sha256_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _mirror(tmp_path, monkeypatch, DA)
    tampered = TranslationFile("da", entry.filename, "0" * 64)
    with pytest.raises(DataError, match="sha256"):
        ddtp_sentences(("da",), 10, seed=0, files={"da": tampered})
    assert not (tmp_path / "cache" / "ddtp" / ddtp.RELEASE / "Translation-da.bz2").exists()


def test_a_damaged_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "Translation-da.bz2"
    path.write_bytes(b"not bzip2 at all")
    with pytest.raises(DataError, match="bzip2"):
        ddtp.read_translation(path, FILES["da"])


def test_pinned_files_cover_da_sv_nb_and_no_nynorsk() -> None:
    assert sorted(FILES) == ["da", "nb", "sv"]
    assert all(len(f.sha256) == 64 and f.filename.endswith(".bz2") for f in FILES.values())


def test_data_ddtp_sentences_joins_the_training_split_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _mirror(tmp_path, monkeypatch, DA)
    monkeypatch.setitem(FILES, "da", entry)
    monkeypatch.delitem(FILES, "sv")  # the mirror here holds Danish only
    extra = check_joins_training_split_only(tmp_path, "ddtp_sentences")
    assert list(extra.train.groups[-3:]) == [g for g in extra.train.groups if g.startswith("ddtp:")]

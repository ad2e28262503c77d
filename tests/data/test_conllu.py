"""CoNLL-U reading: one example per ``# text`` line, labels from the file mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.text_fixtures import SENTENCES, conllu_text

from modelyard.data.conllu import (
    DOCUMENT_BLOCK,
    document_ids,
    load_conllu_files,
    read_conllu_documents,
    read_conllu_sentences,
)
from modelyard.errors import DataError


def test_reads_raw_sentences_not_tokens(tmp_path: Path) -> None:
    path = tmp_path / "x.conllu"
    text = conllu_text(["Eg har ikkje tid.", "Kvar bur du?"])
    # A comment that is not the text, and a multiword token line, must be ignored.
    path.write_text("# newdoc id = d1\n" + text.replace("1\tEg", "1-2\tEgg\t_\n1\tEg", 1))
    assert read_conllu_sentences(path) == ["Eg har ikkje tid.", "Kvar bur du?"]


def test_files_map_to_labels_in_configured_order(tmp_path: Path) -> None:
    (tmp_path / "a.conllu").write_text(conllu_text(SENTENCES["nn"][:3]))
    (tmp_path / "b.conllu").write_text(conllu_text(SENTENCES["da"][:2]))
    source = load_conllu_files(tmp_path, {"a.conllu": "nn", "b.conllu": "da"}, ["da", "nn"])
    assert source.class_names == ("da", "nn")
    assert list(source.texts) == SENTENCES["nn"][:3] + SENTENCES["da"][:2]
    assert source.labels.tolist() == [1, 1, 1, 0, 0]
    assert source.groups.tolist() == ["a.conllu"] * 3 + ["b.conllu"] * 2
    assert source.texts.dtype == np.dtype(object)


def test_missing_files_are_all_named_with_what_exists(tmp_path: Path) -> None:
    (tmp_path / "a.conllu").write_text(conllu_text(["Hej."]))
    with pytest.raises(DataError, match=r"lacks b\.conllu, c\.conllu; it holds a\.conllu"):
        load_conllu_files(tmp_path, {"a.conllu": "da", "b.conllu": "sv", "c.conllu": "sv"})


def test_label_outside_configured_labels_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.conllu").write_text(conllu_text(["Hej."]))
    with pytest.raises(DataError, match=r"label\(s\) \['xx'\] that are not in data.labels"):
        load_conllu_files(tmp_path, {"a.conllu": "xx"}, ["da", "sv"])


def test_not_conllu_or_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "plain.conllu").write_text("just some text\n")
    with pytest.raises(DataError, match=r"holds no '# text = \.\.\.' lines"):
        read_conllu_sentences(tmp_path / "plain.conllu")
    (tmp_path / "latin1.conllu").write_bytes("# text = Bl\xe5b\xe6r\n".encode("latin-1"))
    with pytest.raises(DataError, match="is not UTF-8"):
        read_conllu_sentences(tmp_path / "latin1.conllu")
    with pytest.raises(DataError, match="does not exist"):
        read_conllu_sentences(tmp_path / "nope.conllu")


def test_document_ids_from_newdoc_prefix_or_blocks(tmp_path: Path) -> None:
    # newdoc marks win, and hold until the next one.
    path = tmp_path / "x.conllu"
    path.write_text("# newdoc id = d1\n" + conllu_text(["A b.", "C d."]))
    assert [doc for _, doc in read_conllu_documents(path)] == ["d1", "d1"]
    # Ids with a document part (Alpino, Icelandic Modern, FarPaHC, Finnish TDT).
    ids = ["WR-1\\WR-1.p.5.s.4", "ALTHINGI_G-33,1.1", "1928.NTACTS.REL-BIB,.1-dev", "b204.1"]
    assert document_ids([None] * 4, list(ids)) == [
        "WR-1",
        "ALTHINGI_G-33",
        "1928.NTACTS.REL-BIB",
        "b204",
    ]
    # Plain counters name no document: blocks of consecutive sentences.
    counters: list[str | None] = [f"{i:06d}" for i in range(DOCUMENT_BLOCK + 1)]
    blocks = document_ids([None] * len(counters), counters)
    assert blocks[0] == blocks[DOCUMENT_BLOCK - 1] != blocks[DOCUMENT_BLOCK]


def test_loaded_documents_are_named_by_file(tmp_path: Path) -> None:
    (tmp_path / "a.conllu").write_text(conllu_text(SENTENCES["nn"][:4]))
    source = load_conllu_files(tmp_path, {"a.conllu": "nn"})
    assert source.documents is not None
    assert source.documents.tolist() == ["a.conllu#doc0"] * 2 + ["a.conllu#doc1"] * 2

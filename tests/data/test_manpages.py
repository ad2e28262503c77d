"""Debian's translated manual pages as langid text: roff reduced to prose paragraphs,
pages read from a package by language, and downloads used only after their sha256
matched (a local mirror of small packages made here; no network)."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from tests.data.extra_sources import check_joins_training_split_only, deb, local_mirror

from modelyard.data import manpages
from modelyard.data.manpages import (
    PACKAGES,
    ManpagePackage,
    manpage_sentences,
    page_texts,
    paragraphs,
    unescape,
)
from modelyard.errors import ConfigError, DataError

PAGE_DA = r""".\" -*- coding: UTF-8 -*-
.TH TEST 1 "september 2022" "GNU coreutils 9.1" Brugerkommandoer
.SH NAVN
test \- kontroller filtyper og sammenlign værdier
.SH SYNOPSIS
\fBtest\fP \fIUDTRYK\fP
.SH BESKRIVELSE
.PP
Returnér med en statusværdi som bestemmes af UDTRYK.
.TP
\fB\-\-help\fP
vis denne hjælpetekst og afslut
.PP
Et udeladt UDTRYK er som standard falsk.  Ellers er UDTRYK sandt eller falsk
og afgør returværdien.
.B Bemærk at
parenteser skal \(aqbeskyttes\(aq med omvendt skråstreg.
.nf
.RS
test \-f /etc/passwd && echo der er en fil her
.RE
.fi
Se /usr/share/doc/coreutils for flere detaljer om det.
"""


def test_unescape_replaces_characters_and_drops_fonts() -> None:
    assert unescape(r"\fBtest\fP \- \(aqx\(aq \[em] \f(CWcode\fR\&.") == "test - 'x' - code."
    assert unescape(r"a\ b \*(Tm \s-1small\s0") == "a b  small"


def test_paragraphs_join_text_lines_and_skip_no_fill_blocks() -> None:
    got = paragraphs(PAGE_DA)
    assert "test - kontroller filtyper og sammenlign værdier" in got
    assert "Returnér med en statusværdi som bestemmes af UDTRYK." in got
    assert (
        "Et udeladt UDTRYK er som standard falsk. Ellers er UDTRYK sandt eller falsk og "
        "afgør returværdien. Bemærk at parenteser skal 'beskyttes' med omvendt skråstreg."
    ) in got
    assert not any("passwd" in paragraph for paragraph in got)  # the .nf example


def test_page_texts_keep_prose_sentences_of_four_words() -> None:
    texts = page_texts(PAGE_DA)
    assert "Returnér med en statusværdi som bestemmes af UDTRYK." in texts
    assert "Ellers er UDTRYK sandt eller falsk og afgør returværdien." in texts
    assert "vis denne hjælpetekst og afslut" in texts
    assert not any("/usr/share" in text for text in texts)  # a path: code-like
    assert "--help" not in " ".join(texts)  # an option alone is not a phrase


def _mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ManpagePackage:
    mirror = local_mirror(tmp_path, monkeypatch, manpages.MANPAGES_BASE_URL_ENV)
    page = gzip.compress(PAGE_DA.encode("utf-8"))
    path = deb(
        mirror / "manpages-da_1.0_all.deb",
        {
            "./usr/share/man/da/man1/test.1.gz": page,
            "./usr/share/man/da/man1/kopi.1.gz": page,  # the same sentences again
            "./usr/share/man/sv/man1/test.1.gz": gzip.compress(b"Inte dansk text alls, nej nej."),
            "./usr/share/doc/manpages-da/copyright": b"GPL-3+",
        },
    )
    return ManpagePackage("da", path.name, hashlib.sha256(path.read_bytes()).hexdigest())


def test_manpage_sentences_label_sample_dedupe_and_group_by_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = _mirror(tmp_path, monkeypatch)
    classes = ("da", "sv", "nb", "nn", "other")
    everything = manpage_sentences(classes, 100, seed=0, packages={"da": package})
    assert set(everything.labels.tolist()) == {0}
    assert len(set(everything.texts)) == len(everything) == len(page_texts(PAGE_DA))
    assert set(everything.groups) == {"manpages:kopi.1"}  # first page in name order
    assert (tmp_path / "cache" / "manpages" / package.filename).is_file()
    capped = manpage_sentences(classes, 2, seed=0, packages={"da": package})
    again = manpage_sentences(classes, 2, seed=0, packages={"da": package})
    assert len(capped) == 2 and np.array_equal(capped.texts, again.texts)
    with pytest.raises(ConfigError, match="at least 0"):
        manpage_sentences(classes, -1, seed=0, packages={"da": package})
    with pytest.raises(DataError, match="no manual-page text"):
        manpage_sentences(("nn", "other"), 10, seed=0, packages={"da": package})


def test_a_package_that_does_not_match_its_sha256_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = _mirror(tmp_path, monkeypatch)
    tampered = ManpagePackage("da", package.filename, "0" * 64)
    with pytest.raises(DataError, match="sha256"):
        manpage_sentences(("da",), 10, seed=0, packages={"da": tampered})
    assert not (tmp_path / "cache" / "manpages" / package.filename).exists()


def test_pinned_packages_cover_da_sv_nb_and_no_nynorsk() -> None:
    assert sorted(PACKAGES) == ["da", "nb", "sv"]
    for label, package in PACKAGES.items():
        assert package.language == label and len(package.sha256) == 64
        assert package.filename.startswith(f"manpages-{label}_")


def test_data_manpage_sentences_joins_the_training_split_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = _mirror(tmp_path, monkeypatch)
    monkeypatch.setitem(PACKAGES, "da", package)
    monkeypatch.delitem(PACKAGES, "sv")  # the mirror here holds Danish only
    extra = check_joins_training_split_only(tmp_path, "manpage_sentences")
    assert all(group.startswith("manpages:") for group in extra.train.groups[-3:])

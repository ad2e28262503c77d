"""Debian's translated manual pages as langid text: roff reduced to prose paragraphs,
pages read from a package by language, and downloads used only after their sha256
matched (a local mirror of small packages made here; no network)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

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


def _deb(path: Path, members: dict[str, bytes]) -> Path:
    """A Debian package: an ar archive whose data.tar.xz holds ``members``."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    out = b"!<arch>\n"
    for name, blob in (("debian-binary", b"2.0\n"), ("data.tar.xz", data.getvalue())):
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(blob):<10}`\n".encode()
        out += blob + (b"\n" if len(blob) % 2 else b"")
    path.write_bytes(out)
    return path


def _mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ManpagePackage:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    page = gzip.compress(PAGE_DA.encode("utf-8"))
    deb = _deb(
        mirror / "manpages-da_1.0_all.deb",
        {
            "./usr/share/man/da/man1/test.1.gz": page,
            "./usr/share/man/da/man1/kopi.1.gz": page,  # the same sentences again
            "./usr/share/man/sv/man1/test.1.gz": gzip.compress(b"Inte dansk text alls, nej nej."),
            "./usr/share/doc/manpages-da/copyright": b"GPL-3+",
        },
    )
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(manpages.MANPAGES_BASE_URL_ENV, mirror.as_uri() + "/")
    return ManpagePackage("da", deb.name, hashlib.sha256(deb.read_bytes()).hexdigest())


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
    from modelyard.choices import DataSource
    from modelyard.config.schema import DataConfig
    from modelyard.data import load_text_dataset

    package = _mirror(tmp_path, monkeypatch)
    monkeypatch.setitem(PACKAGES, "da", package)
    monkeypatch.delitem(PACKAGES, "sv")  # the mirror here holds Danish only
    table = tmp_path / "texts.csv"
    rows = [f"dansk tekst nummer {i},da" for i in range(30)]
    rows += [f"svensk text nummer {i},sv" for i in range(30)]
    table.write_text("text,label\n" + "\n".join(rows) + "\n")
    cfg = DataConfig(source=DataSource.table, path=str(table), labels=["da", "sv"])
    plain = load_text_dataset(cfg)
    cfg.manpage_sentences = 3
    extra = load_text_dataset(cfg)
    assert len(extra.train) - len(plain.train) == 3
    assert all(group.startswith("manpages:") for group in extra.train.groups[-3:])
    assert set(extra.train.labels[-3:].tolist()) == {0}
    assert np.array_equal(extra.val.texts, plain.val.texts)
    assert np.array_equal(extra.test.texts, plain.test.texts)
    assert extra.fingerprint != plain.fingerprint
    cfg.manpage_sentences = -1
    with pytest.raises(ConfigError, match="at least 0"):
        load_text_dataset(cfg)

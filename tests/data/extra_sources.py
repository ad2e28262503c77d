"""Shared by the tests of the downloaded text sources (manual pages, DDTP, catalogues,
Hunspell): archives built in memory that stand in for their downloads, a file:// mirror
to serve them from, and the check that an added source joins the training split only."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from modelyard.choices import DataSource
from modelyard.config.schema import DataConfig
from modelyard.data import load_text_dataset
from modelyard.data.text import TextDataset
from modelyard.errors import ConfigError


def tar_bytes(members: dict[str, bytes], mode: Literal["w:gz", "w:xz"]) -> bytes:
    """A compressed tar archive (``mode`` names the compression) holding ``members``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buffer.getvalue()


def deb(path: Path, members: dict[str, bytes]) -> Path:
    """A Debian package: an ar archive whose data.tar.xz holds ``members``."""
    out = b"!<arch>\n"
    for name, blob in (("debian-binary", b"2.0\n"), ("data.tar.xz", tar_bytes(members, "w:xz"))):
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(blob):<10}`\n".encode()
        out += blob + (b"\n" if len(blob) % 2 else b"")
    path.write_bytes(out)
    return path


def local_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base_url_env: str) -> Path:
    """An empty folder that the source read from ``base_url_env`` downloads from (as a
    file:// URL), with the download cache in ``tmp_path / "cache"``."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(base_url_env, mirror.as_uri() + "/")
    return mirror


def check_joins_training_split_only(tmp_path: Path, count_key: str) -> TextDataset:
    """Load a Danish/Swedish table with ``data.<count_key>`` at 0, then at 3, and check
    that the source added 3 Danish texts to the training split only (val and test the
    same, the fingerprint not) and that a negative count is refused. Returns the dataset
    with the added texts, for the caller's checks of their groups."""
    table = tmp_path / "texts.csv"
    rows = [f"dansk tekst nummer {i},da" for i in range(30)]
    rows += [f"svensk text nummer {i},sv" for i in range(30)]
    table.write_text("text,label\n" + "\n".join(rows) + "\n")
    cfg = DataConfig(source=DataSource.table, path=str(table), labels=["da", "sv"])
    plain = load_text_dataset(cfg)
    setattr(cfg, count_key, 3)
    extra = load_text_dataset(cfg)
    assert len(extra.train) - len(plain.train) == 3
    assert set(extra.train.labels[-3:].tolist()) == {0}
    assert np.array_equal(extra.val.texts, plain.val.texts)
    assert np.array_equal(extra.test.texts, plain.test.texts)
    assert extra.fingerprint != plain.fingerprint
    setattr(cfg, count_key, -1)
    with pytest.raises(ConfigError, match="at least 0"):
        load_text_dataset(cfg)
    return extra

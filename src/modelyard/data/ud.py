"""Universal Dependencies treebank files: where each lives upstream and its sha256.

``langid_nordic`` names these files in its task config (``data.files``). Without
``data.path`` they are downloaded from the treebanks' GitHub repositories at a
pinned release tag and used only once their sha256 matches the table below; with
``data.path=<folder>`` the local copies are read and no network is touched.

The checksums are those of the copies in the development data set
(``../shared/datasets/ud``, "copied unchanged" from the treebanks). That the
pinned tag serves byte-identical files could not be checked offline: if upstream
differs, the download is refused with an error naming the file, never used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelyard.data.conllu import load_conllu_files
from modelyard.data.download import fetch_verified
from modelyard.data.text import TextSource
from modelyard.errors import DataError
from modelyard.paths import data_dir

UD_REF = "r2.15"
"""The UD release tag the files are fetched at (every UD treebank repo carries it)."""
UD_BASE_URL_ENV = "MODELYARD_UD_BASE_URL"
"""Replaces GitHub: one folder or URL holding all files flat, e.g. ``file:///srv/ud/``."""
_RAW = "https://raw.githubusercontent.com/UniversalDependencies/{treebank}/{ref}/"


@dataclass(frozen=True)
class TreebankFile:
    treebank: str
    sha256: str


UD_FILES: dict[str, TreebankFile] = {
    "da_ddt-ud-dev.conllu": TreebankFile(
        "UD_Danish-DDT", "d714b22776ad60fbdb6e4ffc15a5c3ffc162705617567d3cf2b09cc6b51e800a"
    ),
    "sv_talbanken-ud-dev.conllu": TreebankFile(
        "UD_Swedish-Talbanken", "31917fc04cfe9ef7ce8c11ed8570b739a0cefdcda5e06ff93207e6d84f37117b"
    ),
    "no_bokmaal-ud-dev.conllu": TreebankFile(
        "UD_Norwegian-Bokmaal", "1c803c3f90e510ce995c5f9108e240f283c34025333a61281cb90fdf2e82c83a"
    ),
    "no_nynorsk-ud-dev.conllu": TreebankFile(
        "UD_Norwegian-Nynorsk", "c7c497ddab208c3b53ab3849241845c3eacc1dc6045dc3a9631f166e6e541984"
    ),
    "no_nynorsklia-ud-train.conllu": TreebankFile(
        "UD_Norwegian-NynorskLIA",
        "442910865fc552bd3a974b5904dc33e235e7fd92783aaa8fdb77b8d2fdc476c0",
    ),
    "no_nynorsklia-ud-dev.conllu": TreebankFile(
        "UD_Norwegian-NynorskLIA",
        "34aff675517fe94686c41df1a76092cde7452db3dbae8e37439d2c43ccd44d0a",
    ),
    "en_ewt-ud-dev.conllu": TreebankFile(
        "UD_English-EWT", "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6"
    ),
    "de_gsd-ud-dev.conllu": TreebankFile(
        "UD_German-GSD", "00431f2624cbbf66796c097a9303bbc8f8e8ca88ef35c4c5664aa396b2d674c9"
    ),
    "nl_alpino-ud-dev.conllu": TreebankFile(
        "UD_Dutch-Alpino", "3d6ad878d8b7b362fd756da22ae230951233be1e5596743af772150c89ba346d"
    ),
    "fi_tdt-ud-dev.conllu": TreebankFile(
        "UD_Finnish-TDT", "f42cfdc427116b8152ee012541c2f99d95cbc734e629c4eb5c80e20dd67edc0c"
    ),
    "is_modern-ud-dev.conllu": TreebankFile(
        "UD_Icelandic-Modern", "2dc48aa2206fad78ee7bb43304a1589045eb0a9b69c6b4e32c95c64fa7306490"
    ),
    "fo_farpahc-ud-train.conllu": TreebankFile(
        "UD_Faroese-FarPaHC", "44994da63f8e94ff97663b1749ccaf9006422345d25fe976b0a155cacb407fa1"
    ),
    "fo_farpahc-ud-dev.conllu": TreebankFile(
        "UD_Faroese-FarPaHC", "afc127c6e33a510d66b7d1ed49283e27b6822aa728073907bd50edbaccaffb5a"
    ),
}


def download_ud_files(files: Sequence[str], ref: str = UD_REF) -> Path:
    """Make sure every named file is in the cache folder, sha256-verified; return it."""
    unknown = sorted(f for f in files if f not in UD_FILES)
    if unknown:
        raise DataError(
            f"no download source is known for {', '.join(unknown)}; set data.path to a "
            f"folder holding them (known: {', '.join(sorted(UD_FILES))})"
        )
    folder = data_dir() / "ud" / ref
    base = os.environ.get(UD_BASE_URL_ENV)
    for fname in files:
        entry = UD_FILES[fname]
        mirror = base or _RAW.format(treebank=entry.treebank, ref=ref)
        fetch_verified(
            "ud",
            fname,
            (mirror,),
            entry.sha256,
            folder,
            hint=f"Check the network (or {UD_BASE_URL_ENV}), or point data.path at a folder "
            f"holding the CoNLL-U files (e.g. a clone of {entry.treebank})",
        )
    return folder


def load_ud(
    files: Mapping[str, str],
    labels: Sequence[str] | None,
    path: str | None,
    name: str | None = None,
) -> TextSource:
    """The sentences of the named CoNLL-U files: local (``path``) or downloaded."""
    if path:
        return load_conllu_files(Path(path), files, labels, name=name)
    folder = download_ud_files(sorted(files))
    base = os.environ.get(UD_BASE_URL_ENV) or _RAW.format(treebank="<treebank>", ref=UD_REF)
    return load_conllu_files(folder, files, labels, name=name or "ud", uri=base)

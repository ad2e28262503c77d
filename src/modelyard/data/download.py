"""MNIST and Fashion-MNIST: the original IDX files, downloaded once and verified by sha256.

Files are cached under ``data_dir()/<name>/``. A file is only ever used after its
sha256 matched the table below, so an interrupted or tampered download is never
read as training data.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pooch

from modelyard.data.dataset import SourceData
from modelyard.data.idx import read_idx
from modelyard.errors import DataError
from modelyard.paths import DATA_DIR_ENV, data_dir

BASE_URL_ENV = "MODELYARD_IDX_BASE_URL"
"""Replaces the mirrors, e.g. ``file:///srv/mnist/`` or ``http://127.0.0.1:8000/``."""

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

_SOURCE_RECORD = "source-url.txt"


@dataclass(frozen=True)
class IdxSource:
    """One IDX dataset: where to get its four files and what they must hash to."""

    mirrors: tuple[str, ...]
    sha256: dict[str, str]
    class_names: tuple[str, ...]


SOURCES: dict[str, IdxSource] = {
    # Checksums as listed by tensorflow/datasets (tensorflow_datasets/url_checksums/
    # mnist.txt, for the cvdf mirror) and pytorch/vision (torchvision/prototype/
    # datasets/_builtin/mnist.py, MNIST._CHECKSUMS): both agree on all four values.
    "mnist": IdxSource(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256={
            TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        class_names=tuple(str(d) for d in range(10)),
    ),
    # Checksums as listed by keras-team/keras (keras/src/datasets/fashion_mnist.py,
    # FILE_HASHES, verified against the tf-keras-datasets bucket used as 2nd mirror
    # here), tensorflow/datasets (url_checksums/fashion_mnist.txt, for the zalando S3
    # mirror) and pytorch/vision (FashionMNIST._CHECKSUMS): all three agree.
    "fashion_mnist": IdxSource(
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        ),
        sha256={
            TRAIN_IMAGES: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            TRAIN_LABELS: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            TEST_IMAGES: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            TEST_LABELS: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}


class _ChecksumMismatch(Exception):
    """A fetched file's sha256 differs from the table: it was discarded."""


def load_idx_dataset(
    name: str, base_url: str | None = None, *, checksums: dict[str, str] | None = None
) -> SourceData:
    """Load ``mnist`` or ``fashion_mnist``: train split as the examples, t10k as the test split.

    ``base_url`` (else ``$MODELYARD_IDX_BASE_URL``, else the built-in mirrors) says
    where to fetch from; ``checksums`` replaces expected sha256 values per file name
    (for test fixtures that are not the real files).
    """
    if name not in SOURCES:
        raise DataError(f"unknown IDX dataset '{name}'; choose one of {', '.join(SOURCES)}")
    source = SOURCES[name]
    unknown = set(checksums or {}) - set(IDX_FILES)
    if unknown:
        raise DataError(f"checksums for unknown files {sorted(unknown)}; known: {IDX_FILES}")
    expected = {**source.sha256, **{k: v.lower() for k, v in (checksums or {}).items()}}
    base_url = base_url or os.environ.get(BASE_URL_ENV) or None
    mirrors = (base_url,) if base_url else source.mirrors
    mirrors = tuple(m if m.endswith("/") else m + "/" for m in mirrors)
    folder = data_dir() / name
    paths, uri = _fetch_all(name, mirrors, expected, folder)
    images, labels = _read_split(paths[TRAIN_IMAGES], paths[TRAIN_LABELS], source)
    test_images, test_labels = _read_split(paths[TEST_IMAGES], paths[TEST_LABELS], source)
    return SourceData(name, uri, images, labels, source.class_names, test_images, test_labels)


def _fetch_all(
    name: str, mirrors: tuple[str, ...], expected: dict[str, str], folder: Path
) -> tuple[dict[str, Path], str]:
    """Make sure the four files are in ``folder`` with the right hash; say where from."""
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / _SOURCE_RECORD
    used: str | None = None
    paths: dict[str, Path] = {}
    for fname in IDX_FILES:
        target = folder / fname
        if target.is_file() and pooch.file_hash(str(target)) == expected[fname]:
            paths[fname] = target  # cached and verified: no network needed
            continue
        used = _fetch_one(name, fname, mirrors, expected[fname], folder)
        paths[fname] = target
    if used is not None:
        record.write_text(used + "\n")
        return paths, used
    if record.is_file():
        return paths, record.read_text().strip()
    return paths, mirrors[0]


def fetch_verified(
    name: str, fname: str, mirrors: tuple[str, ...], sha256: str, folder: Path, hint: str
) -> Path:
    """``folder/fname``, fetched from the first mirror that serves it intact unless a copy
    with the right sha256 is already there. Other datasets (UD treebanks) use this too;
    ``hint`` ends the error when every mirror fails (what the user can do instead)."""
    target = folder / fname
    folder.mkdir(parents=True, exist_ok=True)
    if not (target.is_file() and pooch.file_hash(str(target)) == sha256):
        mirrors = tuple(m if m.endswith("/") else m + "/" for m in mirrors)
        _fetch_one(name, fname, mirrors, sha256, folder, hint)
    return target


def _fetch_one(
    name: str,
    fname: str,
    mirrors: tuple[str, ...],
    sha256: str,
    folder: Path,
    hint: str | None = None,
) -> str:
    """Fetch ``fname`` from the first mirror that serves it intact; return that mirror."""
    failures: list[str] = []
    corrupt: list[str] = []
    for base in mirrors:
        url = base + fname
        try:
            _retrieve(url, fname, sha256, folder)
            return base
        except _ChecksumMismatch:
            corrupt.append(url)
        except (OSError, DataError) as err:  # requests' errors are OSErrors
            failures.append(f"{url} ({_reason(err)})")
    if corrupt:
        raise DataError(
            f"{name}: {', '.join(corrupt)} did not match its sha256 checksum (corrupt or "
            f"truncated transfer); the file was discarded, not used. Retry, or delete "
            f"{folder} (or set {DATA_DIR_ENV} to a fresh folder) and try again"
        )
    hint = hint or (
        f"Check the network (or {BASE_URL_ENV}), or place {', '.join(IDX_FILES)} "
        f"manually in {folder}"
    )
    raise DataError(f"{name}: could not download {fname}; tried {'; '.join(failures)}. {hint}")


def _retrieve(url: str, fname: str, sha256: str, folder: Path) -> None:
    """Put ``url`` at ``folder/fname`` only if its sha256 matches; else raise."""
    scheme = urlparse(url).scheme
    if scheme == "file":
        _copy_verified(Path(url2pathname(urlparse(url).path)), folder / fname, sha256)
        return
    if scheme not in ("http", "https"):
        raise DataError(f"unsupported URL scheme '{scheme}' (use http, https or file)")
    progressbar = importlib.util.find_spec("tqdm") is not None
    downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=60)
    try:
        pooch.retrieve(
            url, known_hash=f"sha256:{sha256}", fname=fname, path=folder, downloader=downloader
        )
    except ValueError as err:  # pooch's hash mismatch; it already deleted the download
        raise _ChecksumMismatch(url) from err


def _copy_verified(source: Path, target: Path, sha256: str) -> None:
    """``file://`` mirrors, which pooch does not fetch: copy, verify, then move into place."""
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        shutil.copyfile(source, tmp)
        if pooch.file_hash(str(tmp)) != sha256:
            raise _ChecksumMismatch(source.as_uri())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _read_split(
    images_path: Path, labels_path: Path, source: IdxSource
) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 (N, H, W, 1) and labels as int64, checked against each other."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    fix = "delete it so it is downloaded again"
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(
            f"{images_path} holds {images.dtype} {images.shape}, not uint8 images (N, H, W); {fix}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{labels_path} holds labels of shape {labels.shape} for {images.shape[0]} "
            f"images in {images_path.name}; {fix}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(source.class_names)):
        raise DataError(
            f"{labels_path} holds labels outside 0..{len(source.class_names) - 1}; {fix}"
        )
    return images[..., None], labels.astype(np.int64)


def _reason(err: BaseException) -> str:
    """A short why for a failed fetch; requests' own messages run to several hundred chars."""
    response = getattr(err, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    text = " ".join(str(err).split())
    for needle, reason in (
        ("Failed to resolve", "host not found"),
        ("Name or service not known", "host not found"),
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
    ):
        if needle in text:
            return reason
    if isinstance(err, FileNotFoundError):
        return "no such file"
    return f"{type(err).__name__}: {text[:150]}"

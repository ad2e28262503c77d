"""MNIST-style downloads against a local HTTP server: checksums, cache, corrupt and lost files."""

from __future__ import annotations

import functools
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from modelyard.data.dataset import SourceData
from modelyard.data.download import BASE_URL_ENV, IDX_FILES, SOURCES, load_idx_dataset
from modelyard.data.idx import write_idx
from modelyard.errors import DataError

N_TRAIN, N_TEST = 50, 20


@dataclass
class Served:
    folder: Path
    url: str
    checksums: dict[str, str]
    arrays: dict[str, np.ndarray]
    server: ThreadingHTTPServer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_fake_files(folder: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, N_TRAIN, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, N_TEST, dtype=np.uint8),
    }
    folder.mkdir(parents=True)
    for fname, array in arrays.items():
        write_idx(folder / fname, array)
    return arrays


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(folder))
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    for var in ("NO_PROXY", "no_proxy"):  # never send 127.0.0.1 through a proxy
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    return folder


@pytest.fixture
def served(tmp_path: Path, cache: Path) -> Iterator[Served]:
    folder = tmp_path / "mirror"
    arrays = _write_fake_files(folder)
    checksums = {fname: _sha256(folder / fname) for fname in IDX_FILES}
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    state = Served(folder, url, checksums, arrays, server)
    yield state
    state.stop()


def _check_arrays(data: SourceData, arrays: dict[str, np.ndarray]) -> None:
    assert data.images.shape == (N_TRAIN, 28, 28, 1)
    assert data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64
    assert data.test_images is not None
    assert data.test_labels is not None
    assert data.test_images.shape == (N_TEST, 28, 28, 1)
    assert data.test_labels.dtype == np.int64
    np.testing.assert_array_equal(data.images[..., 0], arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(data.labels, arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(data.test_images[..., 0], arrays["t10k-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(data.test_labels, arrays["t10k-labels-idx1-ubyte.gz"])


def test_download_verifies_and_caches(served: Served, cache: Path) -> None:
    data = load_idx_dataset("mnist", served.url, checksums=served.checksums)
    _check_arrays(data, served.arrays)
    assert data.name == "mnist"
    assert data.uri == served.url
    assert data.class_names == tuple("0123456789")
    for fname in IDX_FILES:
        assert (cache / "mnist" / fname).is_file()

    served.stop()  # the second load must not need the network
    again = load_idx_dataset("mnist", served.url, checksums=served.checksums)
    _check_arrays(again, served.arrays)
    assert again.uri == served.url


def test_env_var_and_fashion_names(
    served: Served, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BASE_URL_ENV, served.url.rstrip("/"))  # trailing slash optional
    data = load_idx_dataset("fashion_mnist", checksums=served.checksums)
    _check_arrays(data, served.arrays)
    assert data.class_names[0] == "T-shirt/top"
    assert data.class_names[9] == "Ankle boot"
    assert len(data.class_names) == 10
    assert (cache / "fashion_mnist" / IDX_FILES[0]).is_file()


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(20, 30):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", [_flip_bytes, _truncate], ids=["corrupt", "truncated"])
def test_bad_download_is_rejected_and_not_cached(
    served: Served, cache: Path, damage: Callable[[Path], None]
) -> None:
    fname = "train-images-idx3-ubyte.gz"
    good = (served.folder / fname).read_bytes()
    damage(served.folder / fname)
    with pytest.raises(DataError, match="sha256") as info:
        load_idx_dataset("mnist", served.url, checksums=served.checksums)
    message = str(info.value)
    assert served.url + fname in message
    assert "not used" in message
    assert "\n" not in message
    leftovers = [p.name for p in (cache / "mnist").iterdir() if fname in p.name]
    assert leftovers == []

    (served.folder / fname).write_bytes(good)  # the mirror is repaired: loading works
    _check_arrays(load_idx_dataset("mnist", served.url, checksums=served.checksums), served.arrays)


def test_stale_cached_file_is_replaced(served: Served, cache: Path) -> None:
    load_idx_dataset("mnist", served.url, checksums=served.checksums)
    _truncate(cache / "mnist" / "t10k-images-idx3-ubyte.gz")
    data = load_idx_dataset("mnist", served.url, checksums=served.checksums)
    _check_arrays(data, served.arrays)


def test_unreachable_server(cache: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(DataError) as info:
        load_idx_dataset("mnist", url)
    message = str(info.value)
    assert url + "train-images-idx3-ubyte.gz" in message
    assert str(cache / "mnist") in message
    assert "manually" in message
    assert "\n" not in message


def test_missing_file_on_server(served: Served) -> None:
    (served.folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz \(HTTP 404\)"):
        load_idx_dataset("mnist", served.url, checksums=served.checksums)


def test_file_url(tmp_path: Path, cache: Path) -> None:
    folder = tmp_path / "local"
    arrays = _write_fake_files(folder)
    checksums = {fname: _sha256(folder / fname) for fname in IDX_FILES}
    data = load_idx_dataset("mnist", folder.as_uri(), checksums=checksums)
    _check_arrays(data, arrays)
    assert data.uri == folder.as_uri() + "/"

    _flip_bytes(folder / "t10k-labels-idx1-ubyte.gz")
    (cache / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="sha256"):
        load_idx_dataset("mnist", folder.as_uri(), checksums=checksums)
    assert sorted(p.name for p in (cache / "mnist").iterdir() if "t10k-labels" in p.name) == []


def test_label_count_mismatch(tmp_path: Path, cache: Path) -> None:
    folder = tmp_path / "local"
    _write_fake_files(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(N_TRAIN - 1, dtype=np.uint8))
    checksums = {fname: _sha256(folder / fname) for fname in IDX_FILES}
    with pytest.raises(DataError, match="labels of shape"):
        load_idx_dataset("mnist", folder.as_uri(), checksums=checksums)


def test_labels_out_of_range(tmp_path: Path, cache: Path) -> None:
    folder = tmp_path / "local"
    _write_fake_files(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(N_TEST, 10, dtype=np.uint8))
    checksums = {fname: _sha256(folder / fname) for fname in IDX_FILES}
    with pytest.raises(DataError, match=r"outside 0\.\.9"):
        load_idx_dataset("mnist", folder.as_uri(), checksums=checksums)


def test_unknown_dataset_and_checksum_names(cache: Path) -> None:
    with pytest.raises(DataError, match="unknown IDX dataset"):
        load_idx_dataset("cifar10")
    with pytest.raises(DataError, match="unknown files"):
        load_idx_dataset("mnist", "file:///nowhere/", checksums={"train.gz": "0" * 64})


def test_checksum_table_is_complete() -> None:
    assert set(SOURCES) == {"mnist", "fashion_mnist"}
    for source in SOURCES.values():
        assert set(source.sha256) == set(IDX_FILES)
        for digest in source.sha256.values():
            assert len(digest) == 64
            int(digest, 16)  # hexadecimal
            assert digest == digest.lower()
        assert len(source.class_names) == 10
        assert source.mirrors
    all_digests = [d for s in SOURCES.values() for d in s.sha256.values()]
    assert len(set(all_digests)) == 8

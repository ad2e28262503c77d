"""IDX reading and writing: round trips, and every malformed file refused with a clear message."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from modelyard.data.idx import read_idx, write_idx
from modelyard.errors import DataError


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28),
        np.array([0, 9, 3, 7], dtype=np.uint8),
        np.array([[-1, 2], [3, -40000]], dtype=np.int32),
        np.linspace(0, 1, 6, dtype=np.float32),
    ],
    ids=["uint8-3d", "uint8-1d", "int32-2d", "float32-1d"],
)
def test_round_trip(tmp_path: Path, array: np.ndarray, suffix: str) -> None:
    path = tmp_path / f"a-idx{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # the result is a writable copy


def test_known_header_bytes(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.array([5, 0, 4], dtype=np.uint8))
    assert path.read_bytes() == b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x00\x04"


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def _raw(tmp_path: Path, payload: bytes, name: str = "bad-idx3-ubyte") -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def _valid_bytes() -> bytes:
    header = b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") * 2
    return header + bytes(range(18))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "wrong magic"),
        (b"PK\x03\x04", "wrong magic"),
        (b"", "wrong magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unsupported dtype code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated inside its header"),
        (_valid_bytes()[:-1], "truncated"),
        (_valid_bytes() + b"\x00\x00", "2 unexpected trailing bytes"),
        (b"\x00\x00\x08\x04" + b"\xff\xff\xff\xff" * 4, "truncated"),
    ],
    ids=["magic", "zip", "empty", "dtype", "ndim0", "header", "payload", "trailing", "huge"],
)
def test_malformed_raw_file(tmp_path: Path, payload: bytes, message: str) -> None:
    path = _raw(tmp_path, payload)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    text = str(info.value)
    assert str(path) in text
    assert "delete it" in text
    assert "\n" not in text


def test_valid_raw_bytes_parse(tmp_path: Path) -> None:
    array = read_idx(_raw(tmp_path, _valid_bytes()))
    assert array.shape == (2, 3, 3)
    assert array[1, 2, 2] == 17


def test_malformed_inside_gzip(tmp_path: Path) -> None:
    path = _raw(tmp_path, gzip.compress(_valid_bytes()[:-5]), "cut-idx3-ubyte.gz")
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


@pytest.mark.parametrize(
    "payload",
    [
        _valid_bytes(),  # not compressed at all
        gzip.compress(_valid_bytes())[:-12],  # gzip stream cut short
        b"\x1f\x8b\x08\x00" + b"\x00" * 20,  # gzip header, garbage deflate data
    ],
    ids=["not-gzip", "cut-stream", "garbage"],
)
def test_broken_gzip(tmp_path: Path, payload: bytes) -> None:
    path = _raw(tmp_path, payload, "broken-idx3-ubyte.gz")
    with pytest.raises(DataError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "delete it" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nope.gz")


def test_write_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unsupported dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))

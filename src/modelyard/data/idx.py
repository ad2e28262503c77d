"""The IDX format of MNIST-style files: a tiny big-endian header, then raw array bytes.

Layout: two zero bytes, a dtype code, the number of dimensions ``ndim``, then
``ndim`` big-endian uint32 sizes, then the values (big-endian) in C order. Files
ending in ``.gz`` are gzip-compressed.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from modelyard.errors import DataError

# IDX dtype code -> big-endian numpy dtype.
DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in DTYPES.items()}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (raw, or gzip if the name ends in ``.gz``) into a native-endian array.

    Every inconsistency is a ``DataError``: a file that is almost right (cut short
    by an interrupted download, or with bytes appended) must never be read as data.
    """
    path = Path(path)
    redo = "delete it and download or create it again"
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                data = stream.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError as err:
        raise DataError(f"IDX file {path} does not exist") from err
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"IDX file {path} is not a valid gzip stream ({err}); {redo}") from err

    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path} is not an IDX file (wrong magic bytes); {redo}")
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        raise DataError(f"IDX file {path} has unsupported dtype code 0x{code:02X}; {redo}")
    if ndim == 0:
        raise DataError(f"IDX file {path} declares 0 dimensions; {redo}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"IDX file {path} is truncated inside its header; {redo}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise DataError(
            f"IDX file {path} is truncated: shape {shape} needs {expected} bytes, "
            f"found {found}; {redo}"
        )
    if found > expected:
        raise DataError(
            f"IDX file {path} has {found - expected} unexpected trailing bytes after "
            f"shape {shape}; {redo}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The gzip header carries no timestamp, so equal arrays give byte-identical files
    (and therefore equal checksums).
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise DataError(f"cannot write {array.dtype} to IDX file {path}: unsupported dtype")
    if not 1 <= array.ndim <= 255:
        raise DataError(f"cannot write a {array.ndim}-d array to IDX file {path}")
    header = bytes([0, 0, _CODES[native], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = header + np.ascontiguousarray(array, dtype=DTYPES[_CODES[native]]).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)

"""Batch prediction to CSV: image files, folders and .npy arrays, or texts (.txt lines
and table columns), scored through the bundle's :class:`Predictor`.

Where each output row came from (its ``file`` or ``source`` column):

- an image file: its path;
- a ``.npy`` array: ``path[i]``, the array index (0-based, as numpy indexes);
- a ``.txt`` file: ``path:N``, N the line number (1 = the first line, as editors show);
- a table (CSV/TSV/JSONL/Parquet): ``path:N``, N the data row (1 = the first row after
  the header), and the table's id column (``id``, or ``id_column``) copied beside it so
  the output can be joined back.

An input that cannot be read (a corrupt image inside a folder, a .npy that holds no
images, a .txt that is not UTF-8, an empty text) is skipped: the rest is written and
:attr:`BatchPrediction.skipped` says what was left out and why. A path that does not
exist, or a table without the text column, is a mistake in the command and stops it.

This module imports neither torch, mlflow nor :mod:`modelyard.data` (sklearn, pandas),
so predicting one image from a bundle folder starts in well under a second.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelyard import bundle as bundle_io
from modelyard.bundle import Bundle
from modelyard.errors import DataError, UsageError
from modelyard.features.image import ImageSpec, conform_images, decode_image
from modelyard.file_formats import IMAGE_SUFFIXES, TABLE_SUFFIXES
from modelyard.predictor import Predictor

_SHOWN_REASONS = 3


@dataclass(frozen=True)
class Skipped:
    """An input left out of the output: where it is, and why it could not be read."""

    source: str
    reason: str


@dataclass
class BatchPrediction:
    """What :func:`predict_to_csv` wrote, and what it left out."""

    out: Path
    rows: int
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Assumptions made on the way (e.g. the scale of a float .npy), to show the user."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "out": str(self.out),
            "skipped": [{"source": s.source, "reason": s.reason} for s in self.skipped],
            "notes": list(self.notes),
        }


def collect_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Expand folders (recursively) into their image files; keep files and .npy as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise DataError(f"folder {path} holds no images (PNG/JPEG)")
            found.extend(images)
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"{path} does not exist; pass image files, folders or a .npy file")
    return found


def images_from_array(array: np.ndarray, where: str) -> tuple[np.ndarray, str | None]:
    """uint8 (N, H, W, C) pixels from an array of images, and a note on the scale assumed.

    Accepted: uint8; other integers in 0..255; floats in [0, 1] (multiplied by 255)
    or in [0, 255] (rounded). A float array whose largest value is at most 1 is read
    as [0, 1]; the note says which scale was assumed, so a user can tell.
    """
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise DataError(
            f"{where} holds an array of shape {array.shape}; expected images (N, H, W[, C])"
        )
    if array.shape[0] == 0 or array.size == 0:
        raise DataError(f"{where} holds no images (shape {array.shape})")
    if array.dtype == np.uint8:
        return array, None
    if array.dtype.kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise DataError(
                f"{where} holds {array.dtype} values in [{low}, {high}]; pixels must be in "
                "0..255: rescale it"
            )
        return array.astype(np.uint8), None
    if array.dtype.kind != "f":
        raise DataError(
            f"{where} holds {array.dtype}; expected uint8 pixels, or floats in [0, 1] or [0, 255]"
        )
    if not np.isfinite(array).all():
        raise DataError(
            f"{where} holds NaN or infinite values; expected floats in [0, 1] or [0, 255]"
        )
    lowest, highest = float(array.min()), float(array.max())
    if lowest < 0 or highest > 255:
        raise DataError(
            f"{where} holds floats in [{lowest:g}, {highest:g}]; expected [0, 1] or [0, 255]: "
            "rescale it"
        )
    scale, assumed = (255.0, "[0, 1] (multiplied by 255)") if highest <= 1 else (1.0, "[0, 255]")
    pixels = np.rint(array.astype(np.float64) * scale).astype(np.uint8)
    note = (
        f"{where}: {array.dtype} values in [{lowest:g}, {highest:g}]; assumed the scale {assumed}"
    )
    return pixels, note


def _load_npy(path: Path, spec: ImageSpec) -> tuple[np.ndarray, str | None]:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path} is not a readable .npy array: {error}") from error
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise DataError(f"{path} is not a single .npy array; save one array with np.save")
    pixels, note = images_from_array(array, str(path))
    return conform_images(pixels, spec), note


@dataclass(frozen=True)
class TextRow:
    """One text to score: where it came from (``path:N``), the text, the table's id."""

    source: str
    text: str
    row_id: str | None = None


def _table_rows(
    path: Path,
    columns: Sequence[str],
    rows: Sequence[dict[str, Any]],
    text_column: str,
    id_column: str | None,
) -> tuple[list[TextRow], list[Skipped], bool]:
    """A table's texts (rows numbered from 1 after the header), its empty rows as
    skipped, and whether it had the id column. A missing column is the command's
    mistake (the same option applies to every table), so it stops the run."""
    if text_column not in columns:
        raise DataError(
            f"{path} has no column '{text_column}'; its columns are "
            f"{', '.join(columns) or '(none)'}; pass --text-column"
        )
    id_name = id_column or "id"
    if id_column is not None and id_column not in columns:
        raise DataError(
            f"{path} has no column '{id_column}'; its columns are {', '.join(columns)}; "
            "pass --id-column with one of them"
        )
    has_id = id_name in columns
    found: list[TextRow] = []
    skipped: list[Skipped] = []
    for number, row in enumerate(rows, start=1):
        where = f"{path}:{number}"
        text = row.get(text_column)
        text = "" if text is None else str(text)
        if not text.strip():
            skipped.append(Skipped(where, f"{where}: the '{text_column}' cell is empty"))
            continue
        value = row.get(id_name) if has_id else None
        found.append(TextRow(where, text, None if value is None else str(value)))
    return found, skipped, has_id


def read_texts(
    paths: Sequence[str | Path], text_column: str = "text", id_column: str | None = None
) -> tuple[list[TextRow], list[Skipped], bool]:
    """The texts to score: one per non-empty line of a .txt file (numbered from 1), or
    the ``text_column`` of a CSV/TSV/JSONL/Parquet table, row by row (numbered from 1
    after the header), with the table's ``id_column`` (default ``id``, if it has one).

    Returns the texts, the inputs skipped (unreadable files, empty cells) and whether
    any table had the id column.
    """
    found: list[TextRow] = []
    skipped: list[Skipped] = []
    any_id = False
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise DataError(f"{path} does not exist; pass .txt files (one text per line) or tables")
        if path.suffix.lower() in TABLE_SUFFIXES:
            from modelyard.data.table import read_rows  # pandas etc. only for tables

            try:
                columns, table = read_rows(path)
            except DataError as error:
                skipped.append(Skipped(str(path), str(error)))
                continue
            except OSError as error:
                skipped.append(Skipped(str(path), f"cannot read {path}: {error.strerror}"))
                continue
            rows, empty, has_id = _table_rows(path, columns, table, text_column, id_column)
            found += rows
            skipped += empty
            any_id = any_id or has_id
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            skipped.append(
                Skipped(str(path), f"{path} is not UTF-8 (byte {error.start}); save it as UTF-8")
            )
            continue
        except OSError as error:
            skipped.append(Skipped(str(path), f"cannot read {path}: {error.strerror}"))
            continue
        found += [
            TextRow(f"{path}:{number}", line)
            for number, line in enumerate(lines, start=1)
            if line.strip()
        ]
    if not found:
        raise DataError(
            "no texts found in the given files" + _reasons(skipped) + "; nothing was written"
        )
    return found, skipped, any_id


def _reasons(skipped: Sequence[Skipped]) -> str:
    if not skipped:
        return ""
    shown = "; ".join(s.reason for s in skipped[:_SHOWN_REASONS])
    more = f" and {len(skipped) - _SHOWN_REASONS} more" if len(skipped) > _SHOWN_REASONS else ""
    return f" ({shown}{more})"


def _write_csv(out: Path, header: list[str], rows: Iterable[list[Any]]) -> None:
    """Write through a temporary file and rename it, so a failure midway leaves any
    previous file (``--overwrite``) intact."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        with partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; name a CSV file")
    if out.exists() and not overwrite:
        raise UsageError(
            f"{out} already exists; pass --overwrite to replace it, or choose another --out"
        )


def _probabilities(labels: Sequence[str], probs: np.ndarray) -> list[str]:
    return [labels[int(probs.argmax())], f"{probs.max():.6f}", *(f"{p:.6f}" for p in probs)]


def _texts_to_csv(
    loaded: Bundle,
    inputs: Sequence[str | Path],
    out: Path,
    text_column: str,
    id_column: str | None,
    overwrite: bool,
) -> BatchPrediction:
    texts, skipped, any_id = read_texts(inputs, text_column, id_column)
    _check_out(out, overwrite)
    prediction = Predictor(loaded).predict_texts([row.text for row in texts])
    truncated = prediction.truncated
    assert truncated is not None
    probabilities = [f"p_{label}" for label in loaded.labels]
    own = ["source", "text", "label", "confidence", "truncated", *probabilities]
    id_header: list[str] = []
    if any_id:
        name = id_column or "id"
        id_header = [f"input_{name}" if name in own else name]
    header = ["source", *id_header, "text", "label", "confidence", "truncated", *probabilities]

    def rows() -> Iterable[list[Any]]:
        answers = prediction.answers  # the bundle's min_confidence, as served
        for row, probs, cut, answer in zip(
            texts, prediction.probabilities, truncated, answers, strict=True
        ):
            _, confidence, *each = _probabilities(loaded.labels, probs)
            label = answer
            ids = [row.row_id or ""] if any_id else []
            yield [row.source, *ids, row.text, label, confidence, bool(cut), *each]

    _write_csv(out, header, rows())
    return BatchPrediction(out, len(texts), skipped)


def _images_to_csv(
    loaded: Bundle,
    inputs: Sequence[str | Path],
    out: Path,
    text_column: str,
    id_column: str | None,
    overwrite: bool,
) -> BatchPrediction:
    if id_column is not None:
        raise UsageError("--id-column is for text tables; image rows are named by file")
    spec: ImageSpec = loaded.preprocessing  # _WRITERS sends only image bundles here
    files = collect_inputs(inputs)
    _check_out(out, overwrite)
    names: list[str] = []
    batches: list[np.ndarray] = []
    skipped: list[Skipped] = []
    notes: list[str] = []
    for path in files:
        try:
            if path.suffix.lower() == ".npy":
                pixels, note = _load_npy(path, spec)
                names += [f"{path}[{i}]" for i in range(len(pixels))]
                batches.append(pixels)
                notes += [note] if note else []
            else:
                batches.append(decode_image(path, spec)[None])
                names.append(str(path))
        except DataError as error:
            skipped.append(Skipped(str(path), str(error)))
    if not batches:
        raise DataError(
            f"none of the {len(files)} inputs could be read{_reasons(skipped)}; nothing was written"
        )
    prediction = Predictor(loaded).predict_images(np.concatenate(batches))
    header = ["file", "label", "confidence", *(f"p_{label}" for label in loaded.labels)]
    rows = (
        [name, *_probabilities(loaded.labels, probs)]
        for name, probs in zip(names, prediction.probabilities, strict=True)
    )
    _write_csv(out, header, rows)
    return BatchPrediction(out, len(names), skipped, notes)


def predict_to_csv(
    model_uri: str,
    inputs: Sequence[str | Path],
    out: Path,
    text_column: str = "text",
    *,
    id_column: str | None = None,
    overwrite: bool = False,
) -> BatchPrediction:
    """Score images (files, folders, .npy) or, for a text model, texts (.txt lines or a
    table's ``text_column``), and write one CSV row per input to ``out``.

    Refuses an existing ``out`` unless ``overwrite``. Inputs that cannot be read are
    skipped and listed in the result; if none can be read, nothing is written.
    """
    out = Path(out)
    loaded = bundle_io.load(model_uri)
    writer = _WRITERS.get(loaded.kind)
    if writer is None:
        raise UsageError(
            f"batch prediction reads image and text inputs; {loaded.name} is a "
            f"{loaded.kind} model: serve it and send its inputs to /v1 or v2"
        )
    return writer(loaded, inputs, out, text_column, id_column, overwrite)


_WRITERS = {"image": _images_to_csv, "text": _texts_to_csv}
"""kind -> how its inputs are found on disk (files and folders, or texts and tables)."""

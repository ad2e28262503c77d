"""A user's labelled texts in a table: CSV, JSON Lines or Parquet.

The text and label columns are configurable (``data.text_column``,
``data.label_column``). Every problem names the file, and the row or column, so a
user can fix the data rather than guess: a missing column lists the columns that
exist, an empty text gives its row number, an unknown label lists the allowed ones.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.data.text import TextSource, as_text_array
from modelyard.errors import DataError
from modelyard.file_formats import TABLE_SUFFIXES


def _read_csv(path: Path, delimiter: str) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 (byte {error.start}); save it as UTF-8") from None
    except csv.Error as error:
        raise DataError(f"{path} is not valid CSV: {error}") from None


def _read_jsonl(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    columns: dict[str, None] = {}
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 (byte {error.start}); save it as UTF-8") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path} line {number} is not valid JSON: {error.msg}") from None
        if not isinstance(row, dict):
            raise DataError(f"{path} line {number} is not a JSON object")
        columns.update(dict.fromkeys(row))
        rows.append(row)
    return list(columns), rows


def _read_parquet(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            "reading Parquet needs pyarrow (MLflow installs it): pip install pyarrow"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises its own ArrowInvalid/OSError family
        raise DataError(f"{path} is not a readable Parquet file: {error}") from None
    return list(table.column_names), table.to_pylist()


def read_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """(column names, rows) of a CSV/TSV/JSONL/Parquet file, chosen by its suffix."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"data file {path} does not exist; set data.path to a CSV/JSONL/Parquet")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, ",")
    if suffix == ".tsv":
        return _read_csv(path, "\t")
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path)
    if suffix == ".parquet":
        return _read_parquet(path)
    raise DataError(f"{path}: unknown table format '{suffix}'; use {', '.join(TABLE_SUFFIXES)}")


def load_table(
    path: Path,
    text_column: str = "text",
    label_column: str = "label",
    labels: Sequence[str] | None = None,
) -> TextSource:
    """Labelled texts from a table. Class names are ``labels`` when given (then any
    other label is an error), else the labels found, sorted."""
    path = Path(path).expanduser()
    columns, rows = read_rows(path)
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in columns:
            raise DataError(
                f"{path} has no {role} column '{column}'; its columns are "
                f"{', '.join(columns) if columns else '(none)'}; set data.{role}_column"
            )
    if not rows:
        raise DataError(f"{path} holds no rows")
    # Row numbers as a user sees them: the header is line 1 in CSV, rows start at 2.
    first = 2 if path.suffix.lower() in (".csv", ".tsv") else 1
    texts: list[str] = []
    raw_labels: list[str] = []
    for number, row in enumerate(rows, start=first):
        text, label = row.get(text_column), row.get(label_column)
        if not isinstance(text, str) or not text.strip():
            raise DataError(
                f"{path} row {number}: the text in column '{text_column}' is empty; "
                "remove the row or fill it in"
            )
        if label is None or (isinstance(label, str) and not label.strip()):
            raise DataError(f"{path} row {number}: the label in column '{label_column}' is empty")
        texts.append(text)
        raw_labels.append(str(label).strip())
    if labels:
        class_names = tuple(labels)
        allowed = set(class_names)
        for number, label in enumerate(raw_labels, start=first):
            if label not in allowed:
                raise DataError(
                    f"{path} row {number}: unknown label '{label}'; data.labels allows "
                    f"{', '.join(class_names)}"
                )
    else:
        class_names = tuple(sorted(set(raw_labels)))
    if len(class_names) < 2:
        raise DataError(
            f"{path} has a single label {list(class_names)}; a classifier needs at least 2"
        )
    index = {label: i for i, label in enumerate(class_names)}
    return TextSource(
        name=path.stem,
        uri=path.resolve().as_uri(),
        texts=as_text_array(texts),
        labels=np.asarray([index[label] for label in raw_labels], dtype=np.int64),
        class_names=class_names,
        groups=as_text_array([path.name] * len(texts)),
    )

"""Tables of labelled texts (CSV/TSV/JSONL/Parquet) and their error messages."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from tests.text_fixtures import write_jsonl

from modelyard.data.table import load_table
from modelyard.errors import DataError

ROWS = [
    {"headline": "Scientists confirm water is wet", "verdict": "real", "id": 1},
    {"headline": "Moon made of cheese, says official", "verdict": "fake", "id": 2},
    {"headline": "Parliament passes the budget", "verdict": "real", "id": 3},
]


def _csv(path: Path, rows: list[dict[str, object]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _parquet(path: Path, rows: list[dict[str, object]]) -> Path:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


WRITERS = {
    "csv": lambda p, rows: _csv(p.with_suffix(".csv"), rows),
    "tsv": lambda p, rows: _csv(p.with_suffix(".tsv"), rows, "\t"),
    "jsonl": lambda p, rows: write_jsonl(p.with_suffix(".jsonl"), rows),
    "parquet": lambda p, rows: _parquet(p.with_suffix(".parquet"), rows),
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_every_format_reads_the_same(fmt: str, tmp_path: Path) -> None:
    path = WRITERS[fmt](tmp_path / "news", ROWS)
    source = load_table(path, "headline", "verdict")
    assert source.class_names == ("fake", "real")
    assert list(source.texts) == [r["headline"] for r in ROWS]
    assert source.labels.tolist() == [1, 0, 1]
    assert set(source.groups) == {path.name}


def test_missing_column_names_the_columns_that_exist(tmp_path: Path) -> None:
    path = _csv(tmp_path / "news.csv", ROWS)
    with pytest.raises(
        DataError, match=r"no text column 'text'; its columns are headline, verdict, id"
    ):
        load_table(path, "text", "verdict")
    with pytest.raises(DataError, match=r"no label column 'label'.*data.label_column"):
        load_table(path, "headline", "label")


@pytest.mark.parametrize(("fmt", "row"), [("csv", 3), ("jsonl", 2)])
def test_empty_text_gives_the_row_number(fmt: str, row: int, tmp_path: Path) -> None:
    rows = [dict(r) for r in ROWS]
    rows[1]["headline"] = "   "
    path = WRITERS[fmt](tmp_path / "news", rows)
    with pytest.raises(DataError, match=rf"row {row}: the text in column 'headline' is empty"):
        load_table(path, "headline", "verdict")


def test_unknown_label_lists_the_allowed_ones(tmp_path: Path) -> None:
    path = _csv(tmp_path / "news.csv", [*ROWS, {"headline": "x y", "verdict": "satire", "id": 4}])
    with pytest.raises(
        DataError, match=r"row 5: unknown label 'satire'; data.labels allows fake, real"
    ):
        load_table(path, "headline", "verdict", ["fake", "real"])


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_table(tmp_path / "none.csv")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(DataError, match=r"unknown table format '\.xlsx'"):
        load_table(tmp_path / "x.xlsx")
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "b"}\n{oops\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        load_table(tmp_path / "bad.jsonl")
    one = _csv(tmp_path / "one.csv", [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}])
    with pytest.raises(DataError, match="single label"):
        load_table(one)

"""Batch prediction: float arrays, unreadable inputs skipped and reported, --out
refused unless --overwrite, one row numbering for .txt and tables with the id kept,
and a bundle folder scored without importing the heavy parts."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.helpers import run_cli, write_image
from tests.text_fixtures import SENTENCES

from modelyard.batch_predict import (
    images_from_array,
    predict_to_csv,
)
from modelyard.errors import DataError, ModelyardError


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def digits_bundle(trained) -> Path:  # type: ignore[no-untyped-def]
    return Path(trained.bundle_path)


@pytest.fixture(scope="module")
def text_bundle(trained_text) -> Path:  # type: ignore[no-untyped-def]
    return Path(trained_text.bundle_path)


# -- float and integer arrays ------------------------------------------------------------


def test_float_arrays_in_unit_or_pixel_scale_become_the_same_pixels() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8), dtype=np.uint8)
    unit, note = images_from_array(pixels.astype(np.float32) / 255, "a.npy")
    assert np.array_equal(unit[..., 0], pixels)
    assert note is not None and "assumed the scale [0, 1]" in note and note.startswith("a.npy")
    scaled, note = images_from_array(pixels.astype(np.float64), "b.npy")
    assert np.array_equal(scaled[..., 0], pixels)
    assert note is not None and "assumed the scale [0, 255]" in note
    ints, note = images_from_array(pixels.astype(np.int64), "c.npy")
    assert np.array_equal(ints[..., 0], pixels) and note is None
    same, note = images_from_array(pixels, "d.npy")
    assert same.dtype == np.uint8 and note is None


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((1, 8, 8), np.nan, np.float32), "NaN or infinite"),
        (np.full((1, 8, 8), -0.5, np.float32), r"floats in \[-0.5, -0.5\]; expected \[0, 1\]"),
        (np.full((1, 8, 8), 300.0), r"floats in \[300, 300\]"),
        (np.full((1, 8, 8), 256, np.int32), r"int32 values in \[256, 256\]"),
        (np.zeros((0, 8, 8), np.float32), "holds no images"),
        (np.zeros((8,), np.float32), "expected images"),
        (np.zeros((1, 8, 8), np.complex64), "expected uint8 pixels, or floats"),
    ],
)
def test_arrays_that_are_not_pixels_are_refused_saying_why(array: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        images_from_array(array, "x.npy")


def test_a_float_npy_is_scored_like_its_uint8_twin(digits_bundle: Path, tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "u8.npy", pixels)
    np.save(tmp_path / "unit.npy", pixels.astype(np.float32) / 255)
    result = predict_to_csv(
        str(digits_bundle), [tmp_path / "u8.npy", tmp_path / "unit.npy"], tmp_path / "p.csv"
    )
    assert result.rows == 6 and not result.skipped
    assert len(result.notes) == 1 and "unit.npy" in result.notes[0] and "[0, 1]" in result.notes[0]
    rows = _rows(tmp_path / "p.csv")
    assert [Path(r["file"]).name for r in rows] == [
        *(f"u8.npy[{i}]" for i in range(3)),
        *(f"unit.npy[{i}]" for i in range(3)),
    ]
    for twin, row in zip(rows[:3], rows[3:], strict=True):
        assert {k: v for k, v in twin.items() if k != "file"} == {
            k: v for k, v in row.items() if k != "file"
        }


# -- unreadable inputs -------------------------------------------------------------------


def test_an_unreadable_file_in_a_folder_is_skipped_and_reported(
    digits_bundle: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    write_image(folder / "a.png", (8, 8))
    (folder / "b.png").write_bytes(b"not a png at all")
    write_image(folder / "c.jpg", (10, 12), "RGB")
    np.save(tmp_path / "nan.npy", np.full((2, 8, 8), np.nan))
    out = tmp_path / "p.csv"
    result = predict_to_csv(str(digits_bundle), [folder, tmp_path / "nan.npy"], out)
    assert result.rows == 2
    assert [Path(r["file"]).name for r in _rows(out)] == ["a.png", "c.jpg"]
    assert [Path(s.source).name for s in result.skipped] == ["b.png", "nan.npy"]
    assert "b.png is not a readable image" in result.skipped[0].reason
    assert "NaN" in result.skipped[1].reason

    cli = run_cli("predict", str(digits_bundle), str(folder), "-o", str(tmp_path / "q.csv"))
    assert cli.returncode == 1, cli.stderr  # partly failed: the rest is written
    assert "skipped: " in cli.stderr and "b.png" in cli.stderr
    assert "wrote 2 predictions" in cli.stdout and "skipped 1 input(s)" in cli.stdout
    assert len(_rows(tmp_path / "q.csv")) == 2

    as_json = run_cli(
        "predict", str(digits_bundle), str(folder), "-o", str(tmp_path / "r.csv"), "--json"
    )
    assert as_json.returncode == 1, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["rows"] == 2 and [Path(s["source"]).name for s in data["skipped"]] == ["b.png"]


def test_nothing_readable_is_an_error_and_writes_nothing(
    digits_bundle: Path, tmp_path: Path
) -> None:
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"none of the 1 inputs could be read \(.*bad.png"):
        predict_to_csv(str(digits_bundle), [tmp_path / "bad.png"], tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists()


# -- --out and --overwrite ---------------------------------------------------------------


def test_an_existing_out_is_refused_unless_overwrite(digits_bundle: Path, tmp_path: Path) -> None:
    image = write_image(tmp_path / "a.png", (8, 8))
    out = tmp_path / "p.csv"
    out.write_text("precious\n")
    with pytest.raises(ModelyardError, match="already exists; pass --overwrite"):
        predict_to_csv(str(digits_bundle), [image], out)
    assert out.read_text() == "precious\n"
    cli = run_cli("predict", str(digits_bundle), str(image), "-o", str(out))
    assert cli.returncode == 2 and "pass --overwrite" in cli.stderr
    assert out.read_text() == "precious\n"
    cli = run_cli("predict", str(digits_bundle), str(image), "-o", str(out), "--overwrite")
    assert cli.returncode == 0, cli.stderr
    assert len(_rows(out)) == 1 and not list(tmp_path.glob(".*partial"))


# -- texts: one numbering, ids kept ------------------------------------------------------


def test_txt_lines_and_table_rows_both_count_from_one_and_keep_the_id(
    text_bundle: Path, tmp_path: Path
) -> None:
    lines = tmp_path / "in.txt"
    lines.write_text(f"{SENTENCES['sv'][0]}\n\n{SENTENCES['nb'][3]}\n", encoding="utf-8")
    table = tmp_path / "in.csv"
    table.write_text(
        f"id,body\nA7,{SENTENCES['nn'][2]}\nB8,\nC9,{SENTENCES['da'][1]}\n", encoding="utf-8"
    )
    out = tmp_path / "p.csv"
    result = predict_to_csv(str(text_bundle), [lines, table], out, text_column="body")
    rows = _rows(out)
    assert [r["source"] for r in rows] == [f"{lines}:1", f"{lines}:3", f"{table}:1", f"{table}:3"]
    assert [r["id"] for r in rows] == ["", "", "A7", "C9"]
    assert rows[2]["text"] == SENTENCES["nn"][2]
    # The empty cell is left out, named by the same numbering, and reported.
    assert [s.source for s in result.skipped] == [f"{table}:2"]
    assert "'body' cell is empty" in result.skipped[0].reason


def test_id_column_names_the_join_key(text_bundle: Path, tmp_path: Path) -> None:
    table = tmp_path / "in.jsonl"
    table.write_text(
        "\n".join(
            json.dumps({"key": 40 + i, "text": s}) for i, s in enumerate(SENTENCES["da"][:2])
        ),
        encoding="utf-8",
    )
    out = tmp_path / "p.csv"
    predict_to_csv(str(text_bundle), [table], out, id_column="key")
    assert [(r["source"], r["key"]) for r in _rows(out)] == [
        (f"{table}:1", "40"),
        (f"{table}:2", "41"),
    ]
    with pytest.raises(DataError, match="has no column 'nope'; its columns are key, text"):
        predict_to_csv(str(text_bundle), [table], out, id_column="nope", overwrite=True)


def test_an_unreadable_text_file_is_skipped(text_bundle: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(SENTENCES["sv"][1] + "\n", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00latin junk \xe9\n")
    result = predict_to_csv(str(text_bundle), [bad, good], tmp_path / "p.csv")
    assert result.rows == 1 and [s.source for s in result.skipped] == [str(bad)]
    assert "is not UTF-8" in result.skipped[0].reason


# -- staying light -----------------------------------------------------------------------


HEAVY = ("torch", "mlflow", "lightning", "sklearn", "pandas", "scipy", "modelyard.data")


def test_predicting_from_a_bundle_folder_imports_nothing_heavy(
    digits_bundle: Path, tmp_path: Path
) -> None:
    image = write_image(tmp_path / "a.png", (8, 8))
    code = (
        "import sys, json\n"
        "from modelyard.cli import app\n"
        f"app(['predict', {str(digits_bundle)!r}, {str(image)!r}, '-o', "
        f"{str(tmp_path / 'p.csv')!r}], standalone_mode=False)\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"a bundle folder's predict imported {loaded}"

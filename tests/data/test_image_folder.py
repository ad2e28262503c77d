from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import write_image

from modelyard.data.image_folder import load_image_folder
from modelyard.errors import DataError
from modelyard.features.image import ImageSpec

SPEC = ImageSpec(8, 8, 1, 0.5, 0.25)


def test_reads_any_size_and_mode(tmp_path: Path) -> None:
    write_image(tmp_path / "a" / "big.png", (300, 200), "RGB")
    write_image(tmp_path / "a" / "small.jpg", (5, 5), "L")
    write_image(tmp_path / "b" / "x.jpeg", (64, 10), "RGB")
    (tmp_path / "b" / "notes.txt").write_text("ignored")
    data = load_image_folder(tmp_path, SPEC)
    assert data.images.shape == (3, 8, 8, 1)
    assert data.labels.tolist() == [0, 0, 1] and data.class_names == ("a", "b")


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist; set data\.path"):
        load_image_folder(tmp_path / "nope", SPEC)


def test_class_folder_without_images(tmp_path: Path) -> None:
    write_image(tmp_path / "a" / "1.png", (8, 8))
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=r"class folder .*b has no images"):
        load_image_folder(tmp_path, SPEC)


def test_one_class_is_not_a_classifier(tmp_path: Path) -> None:
    write_image(tmp_path / "a" / "1.png", (8, 8))
    with pytest.raises(DataError, match="needs at least 2"):
        load_image_folder(tmp_path, SPEC)


def test_unreadable_image_names_the_file(tmp_path: Path) -> None:
    write_image(tmp_path / "a" / "1.png", (8, 8))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"broken.png is not a readable image"):
        load_image_folder(tmp_path, SPEC)

"""A user's image folder: one sub-folder per class, PNG/JPEG of any size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelyard.data.dataset import SourceData
from modelyard.errors import DataError
from modelyard.features.image import ImageSpec, decode_image
from modelyard.file_formats import IMAGE_SUFFIXES


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name for determinism."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folder(path: str | Path, spec: ImageSpec) -> SourceData:
    """Read every image under ``path/<class>/``, converted to the spec's size and channels."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(
            f"image folder {root} does not exist; set data.path to a folder with one "
            "sub-folder per class"
        )
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DataError(
            f"image folder {root} has {len(class_dirs)} class sub-folder(s); a classifier "
            "needs at least 2 (one sub-folder per class, images inside)"
        )
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        files = list_images(class_dir)
        if not files:
            raise DataError(
                f"class folder {class_dir} has no images (PNG/JPEG); add images or remove it"
            )
        for file in files:
            images.append(decode_image(file, spec))
            labels.append(label)
    return SourceData(
        name=root.name,
        uri=root.resolve().as_uri(),
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(d.name for d in class_dirs),
    )

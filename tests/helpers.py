"""Test helpers that several test modules import (conftest holds the fixtures)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, size: tuple[int, int], mode: str = "L", value: int = 128) -> Path:
    """A small real image file (PNG or JPEG by suffix) with a bright square in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0], 3 if mode == "RGB" else 1), dtype=np.uint8)
    array[size[1] // 4 : 3 * size[1] // 4, size[0] // 4 : 3 * size[0] // 4] = value
    Image.fromarray(array[..., 0] if mode == "L" else array, mode=mode).save(path)
    return path


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``modelyard`` console script as a user would."""
    exe = Path(sys.executable).with_name("modelyard")
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )

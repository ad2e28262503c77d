"""Browser inputs shaped like dataset digits, and a UI that needs no model runtime."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
from PIL import Image

from modelyard.ui.examples import centred, digit_png, drawing_png, has_ink


def _array(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_a_small_drawing_in_a_corner_is_centred_and_fills_the_frame() -> None:
    rgba = np.zeros((224, 224, 4), dtype=np.uint8)
    rgba[10:50, 20:30] = 255  # a short "1" in the top-left corner
    image = _array(drawing_png(rgba))
    assert image.shape == (28, 28)
    rows, cols = np.nonzero(image > 128)
    assert rows.min() >= 1 and rows.max() <= 26 and rows.max() - rows.min() >= 20  # fills it
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 1.5  # centred across


def test_blank_input_stays_blank_and_is_not_ink() -> None:
    assert not has_ink(np.zeros((8, 8, 4), dtype=np.uint8)) and not has_ink(None)
    assert has_ink(np.full((8, 8, 4), 255, dtype=np.uint8))
    blank = centred(Image.new("L", (50, 50)))
    assert blank.size == (28, 28) and blank.getextrema() == (0, 0)


def test_font_digits_differ_and_are_white_on_black() -> None:
    digits = [_array(digit_png(d)) for d in range(10)]
    assert all(d.shape == (28, 28) and d[0, 0] == 0 and d.max() == 255 for d in digits)
    assert len({d.tobytes() for d in digits}) == 10


def test_the_ui_imports_no_torch_and_no_onnx_runtime() -> None:
    code = (
        "import sys, modelyard.cli, modelyard.ui.client, modelyard.ui.reports, "
        "modelyard.ui.examples, modelyard.ui.launch; "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

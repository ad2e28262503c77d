from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from tests.conftest import FAST

from modelyard import bundle
from modelyard.config import compose_config
from modelyard.data import load_dataset
from modelyard.errors import DataError
from modelyard.predictor import Predictor


def test_batched_prediction_equals_single_rows(trained) -> None:  # type: ignore[no-untyped-def]
    images = load_dataset(compose_config(FAST).data).test.images[:10]
    predictor = Predictor(bundle.load(trained.bundle_path), batch_size=3)
    whole = predictor.predict_images(images)
    rows = np.concatenate(
        [predictor.predict_images(images[i : i + 1]).probabilities for i in range(10)]
    )
    assert np.allclose(whole.probabilities, rows, atol=1e-6)
    assert whole.embedding.shape == (10, 64)
    assert whole.predicted_labels == [str(i) for i in whole.predicted]


def test_a_text_method_on_an_image_model_names_the_image_method(trained) -> None:  # type: ignore[no-untyped-def]
    predictor = Predictor(bundle.load(trained.bundle_path))
    with pytest.raises(DataError, match="digits-cnn is an image model; use predict_images"):
        predictor.predict_texts(["hej"])


def test_reading_and_predicting_a_bundle_never_imports_torch(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys, numpy as np\n"
        "from modelyard import bundle\n"
        "from modelyard.predictor import Predictor\n"
        "b = bundle.load('digits-cnn@candidate')\n"
        "p = Predictor(b).predict_images(np.zeros((2, 8, 8, 1), np.uint8))\n"
        "assert p.probabilities.shape == (2, 10)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning'))\n"
        "print(leaked)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_answers_below_min_confidence_take_the_low_confidence_label() -> None:
    from modelyard.predictor import Prediction

    probabilities = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8]], dtype=np.float32)
    empty = np.zeros((3, 1), np.float32)
    plain = Prediction(probabilities, empty, ("da", "sv"))
    assert plain.answers == plain.predicted_labels == ["da", "da", "sv"]
    cautious = Prediction(
        probabilities, empty, ("da", "sv"), min_confidence=0.6, low_confidence_label="other"
    )
    assert cautious.answers == ["da", "other", "sv"]
    assert cautious.predicted_labels == ["da", "da", "sv"]  # evaluation still scores argmax


def test_text_batches_cover_every_text_once_and_never_mix_padded_widths() -> None:
    """A batch pads to its longest text's power of two: one long text must not widen
    a batch of short ones (the gather pays for every padded slot)."""
    from modelyard.features.text import _round_width
    from modelyard.predictor import _batches

    lengths = np.sort(np.random.default_rng(0).integers(0, 700, 3000))
    batches = _batches(lengths, 512, 256)
    assert [start for start, _ in batches] == [0, *(stop for _, stop in batches[:-1])]
    assert batches[-1][1] == len(lengths)
    for start, stop in batches:
        assert 0 < stop - start <= 256
        widths = {_round_width(int(min(n, 512)) + 2) for n in lengths[start:stop]}
        assert len(widths) == 1, (start, stop, widths)
    assert _batches(np.array([5]), 512, 256) == [(0, 1)]

"""Choosing the input kind once: the registry, and bundles of an unknown kind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelyard.bundle import MANIFEST, read_bundle, write_bundle
from modelyard.errors import ModelyardError
from modelyard.features.image import ImageSpec
from modelyard.features.text import TextSpec
from modelyard.modality import kinds, modality_for


def test_every_kind_has_one_shared_object() -> None:
    assert kinds()[:2] == ("image", "text")
    for kind in kinds():
        modality = modality_for(kind)
        assert modality.kind == kind
        assert modality_for(kind) is modality


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ModelyardError, match="unknown input kind 'audio'; this modelyard knows"):
        modality_for("audio")


def test_warmup_inputs_fit_each_kind() -> None:
    image = modality_for("image").warmup_input(ImageSpec(8, 6, 1, 0.5, 0.5), 3)
    assert image.shape == (3, 1, 8, 6) and image.dtype == np.float32
    text = modality_for("text").warmup_input(TextSpec(), 2)
    assert text.shape[0] == 2 and text.dtype == np.int64


def test_a_bundle_of_an_unregistered_kind_is_refused(tmp_path: Path) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"not read")
    folder = tmp_path / "bundle"
    write_bundle(
        folder,
        name="m",
        task="t",
        labels=("a", "b"),
        preprocessing=ImageSpec(8, 8, 1, 0.5, 0.5),
        onnx_file=onnx,
        reference_profile={},
        metrics={},
    )
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["kind"] == "image"
    manifest["kind"] = "audio"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelyardError, match="has kind 'audio'; this modelyard serves image, text"):
        read_bundle(folder)

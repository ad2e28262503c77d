from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelyard import bundle
from modelyard.errors import ModelyardError, RegistryError


@pytest.fixture
def bundle_copy(trained, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    target = tmp_path / "b"
    shutil.copytree(trained.bundle_path, target)
    return target


def test_local_folder_loads(bundle_copy: Path) -> None:
    loaded = bundle.load(bundle_copy)
    assert loaded.name == "digits-cnn" and loaded.version is None
    assert loaded.preprocessing.shape == (1, 8, 8)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda p: (p / "model.onnx").unlink(), "missing model.onnx"),
        (lambda p: (p / "bundle.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "bundle.json").unlink(), "is not a modelyard bundle"),
    ],
)
def test_broken_bundles_are_rejected(bundle_copy: Path, breakage, message: str) -> None:  # type: ignore[no-untyped-def]
    breakage(bundle_copy)
    with pytest.raises(ModelyardError, match=message):
        bundle.load(bundle_copy)


def test_newer_format_asks_for_an_upgrade(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / "bundle.json").read_text())
    manifest["format_version"] = 99
    (bundle_copy / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelyardError, match="upgrade modelyard"):
        bundle.load(bundle_copy)


def test_uri_forms(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    assert bundle.parse_model_uri("digits-cnn@candidate") == "models:/digits-cnn@candidate"
    by_version = bundle.load(f"models:/digits-cnn/{trained.model_version}")
    assert by_version.version == trained.model_version
    with pytest.raises(
        RegistryError, match=r"registered model 'nope' not found; registered models: .*digits-cnn"
    ):
        bundle.load("nope@candidate")
    with pytest.raises(RegistryError, match="has no alias 'production'; its aliases: candidate"):
        bundle.load("digits-cnn@production")
    with pytest.raises(RegistryError, match="has no version 999"):
        bundle.load("models:/digits-cnn/999")
    with pytest.raises(ModelyardError, match="no bundle folder at some/where/else"):
        bundle.load("some/where/else")
    with pytest.raises(ModelyardError, match="for the registered model write digits-cnn@candidate"):
        bundle.load("digits-cnn")


@pytest.mark.parametrize("file", ["model.onnx", "reference_profile.json", "bundle.json"])
def test_a_bundle_file_linking_outside_is_refused(
    bundle_copy: Path, tmp_path: Path, file: str
) -> None:
    outside = tmp_path / "outside" / file
    outside.parent.mkdir()
    shutil.move(bundle_copy / file, outside)
    (bundle_copy / file).symlink_to(outside)
    with pytest.raises(ModelyardError, match="path traversal"):
        bundle.load(bundle_copy)


@pytest.mark.parametrize("name", ["..", "."])
def test_a_model_name_cannot_climb_out_of_the_cache(home: Path, name: str) -> None:
    with pytest.raises(RegistryError, match="path traversal"):
        bundle.load(f"models:/{name}/1")


def test_a_download_with_links_out_is_refused(tmp_path: Path) -> None:
    from modelyard.registry import _require_contained

    folder = tmp_path / "download"
    (folder / "artifacts").mkdir(parents=True)
    (folder / "artifacts" / "model.onnx").write_bytes(b"onnx")
    _require_contained(folder)  # a plain tree passes
    (folder / "artifacts" / "bundle.json").symlink_to("/etc/passwd")
    with pytest.raises(RegistryError, match="path traversal"):
        _require_contained(folder)

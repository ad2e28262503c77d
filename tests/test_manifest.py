"""bundle.json's typed fields: parsed once with errors that name the field, old
bundles still read, the JSON on disk unchanged by a read and write, and only
modelyard.bundle writes it."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import modelyard
from modelyard import bundle
from modelyard.errors import BundleError
from modelyard.manifest import parse_manifest

SRC = Path(modelyard.__file__).parent
_OWN_KEYS = {"format_version", "name", "task", "kind", "labels", "preprocessing", "metrics"}


@pytest.fixture
def bundle_copy(trained, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    target = tmp_path / "b"
    shutil.copytree(trained.bundle_path, target)
    return target


def _edit(folder: Path, change: dict[str, Any], drop: tuple[str, ...] = ()) -> None:
    manifest = json.loads((folder / bundle.MANIFEST).read_text())
    manifest.update(change)
    for key in drop:
        del manifest[key]
    (folder / bundle.MANIFEST).write_text(json.dumps(manifest))


def test_a_trained_bundle_has_its_fields_typed(trained) -> None:  # type: ignore[no-untyped-def]
    fields = bundle.load(trained.bundle_path).fields
    assert fields.labels == tuple(str(digit) for digit in range(10))
    assert fields.run_id == trained.run_id
    assert fields.cost is not None and fields.cost.macs_per_example > 0
    assert fields.onnx is not None and fields.onnx.input == bundle.INPUT_NAME
    assert fields.onnx.max_abs_diff is not None and fields.onnx.max_abs_diff <= 1e-4
    assert fields.dataset is not None and isinstance(fields.dataset.config, dict)
    onnx_record = fields.files[bundle.ONNX_FILE]
    assert onnx_record.sha256 == bundle.file_sha256(trained.bundle_path / bundle.ONNX_FILE)
    assert fields.quantization is None


def test_write_read_write_gives_the_same_bytes(bundle_copy: Path, tmp_path: Path) -> None:
    written = (bundle_copy / bundle.MANIFEST).read_bytes()
    loaded = bundle.read_bundle(bundle_copy)
    rewritten = bundle.write_bundle(
        tmp_path / "again",
        name=loaded.name,
        task=loaded.task,
        labels=loaded.labels,
        preprocessing=loaded.preprocessing,
        onnx_file=loaded.onnx_path,
        reference_profile=loaded.reference_profile,
        metrics=loaded.metrics,
        extra={k: v for k, v in loaded.manifest.items() if k not in _OWN_KEYS | {"files"}},
    )
    assert (rewritten.path / bundle.MANIFEST).read_bytes() == written
    bundle.update_manifest(loaded, {})
    assert (bundle_copy / bundle.MANIFEST).read_bytes() == written


def test_a_bundle_without_the_newer_fields_still_reads(bundle_copy: Path) -> None:
    newer = ("run_id", "dataset", "onnx", "cost", "files")
    _edit(bundle_copy, {}, drop=newer)
    fields = bundle.load(bundle_copy).fields
    assert (fields.run_id, fields.dataset, fields.onnx, fields.cost) == (None,) * 4
    assert fields.files == {} and fields.metrics


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": "0123456789"}, r"'labels' should be a list of strings, not str"),
        ({"metrics": {"test_accuracy": "high"}}, r"'metrics' should be an object of numbers"),
        ({"cost": {"macs_per_example": "many"}}, r"'cost\.macs_per_example' should be a number"),
        ({"onnx": {"input": 3}}, r"'onnx\.input' should be a string, not int"),
        ({"dataset": ["mnist"]}, r"'dataset' should be an object, not list"),
        ({"format_version": "1"}, r"'format_version' should be an integer"),
    ],
)
def test_a_malformed_field_is_named(
    bundle_copy: Path, change: dict[str, Any], message: str
) -> None:
    _edit(bundle_copy, change)
    with pytest.raises(BundleError, match=message) as raised:
        bundle.load(bundle_copy)
    assert "re-export it" in str(raised.value) and "\n" not in str(raised.value)


def test_a_missing_required_field_is_named() -> None:
    with pytest.raises(BundleError, match="manifest lacks task, labels"):
        parse_manifest(
            {"format_version": 1, "name": "m", "kind": "image", "preprocessing": {}}, "x"
        )
    with pytest.raises(BundleError, match="should hold a JSON object"):
        parse_manifest([1, 2], "x")


def test_a_fetched_copy_with_malformed_checksums_is_refused(bundle_copy: Path) -> None:
    manifest = json.loads((bundle_copy / bundle.MANIFEST).read_text())
    assert bundle.verify_files(bundle_copy, manifest) == sorted(bundle.CHECKED_FILES)
    manifest["files"][bundle.ONNX_FILE] = "0" * 64
    with pytest.raises(BundleError, match=r"'files\.model\.onnx' should be an object"):
        bundle.verify_files(bundle_copy, manifest)
    with pytest.raises(BundleError, match="should hold a JSON object"):
        bundle.verify_files(bundle_copy, [])  # type: ignore[arg-type]  # what a hostile registry may send


def _writes_the_manifest(call: ast.Call, source: str) -> bool:
    """A write_text/write_bytes/open(..., "w")/json.dump call whose target names bundle.json."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    modes = [*call.args, *(k.value for k in call.keywords if k.arg == "mode")]
    opens_to_write = func.attr == "open" and any(
        isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax") for mode in modes
    )
    if func.attr in {"write_text", "write_bytes"} or opens_to_write:
        target = func.value
    elif func.attr == "dump" and len(call.args) > 1:
        target = call.args[1]
    else:
        return False
    text = ast.get_source_segment(source, target) or ""
    return "MANIFEST" in text or "bundle.json" in text


def test_only_the_bundle_module_writes_bundle_json() -> None:
    writers = []
    for path in sorted(SRC.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and _writes_the_manifest(node, source):
                writers.append(f"{path.relative_to(SRC)}:{node.lineno}")
    # bundle._write_manifest is the one writer, behind write_bundle and update_manifest.
    assert writers == ["bundle.py:" + str(_write_manifest_line())]


def _write_manifest_line() -> int:
    tree = ast.parse((SRC / "bundle.py").read_text(encoding="utf-8"))
    function = next(
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == "_write_manifest"
    )
    return function.body[-1].lineno

"""The ModelBundle: everything needed to answer a request, and nothing that needs torch.

On disk a bundle is a folder::

    bundle.json             manifest: name, task, labels, preprocessing, metrics, parity,
                            and the sha256 of each file below (``files``)
    model.onnx              the graph (input ``input``; outputs logits/probabilities/embedding)
    reference_profile.json  training inputs and outputs, for drift monitoring

Training writes it (:func:`write_bundle`); serving, export, evaluation and
monitoring read it (:func:`load`). Only JSON and ONNX are read: no pickle.
The manifest's typed fields (:class:`modelyard.manifest.Manifest`) are parsed once,
on reading; :func:`write_bundle` and :func:`update_manifest` are its only writers.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from modelyard.errors import BundleError, UsageError
from modelyard.manifest import FILES_KEY, Manifest, parse_manifest, recorded_files

if TYPE_CHECKING:
    from modelyard.modality import InputSpec, Modality

FORMAT_VERSION = 1
MANIFEST = "bundle.json"
INPUT_NAME = "input"
"""The ONNX graph's one input, in every bundle (images: float32 N x C x H x W; text:
int64 n-gram ids N x L)."""
ONNX_FILE = "model.onnx"
PROFILE_FILE = "reference_profile.json"
# Inside an MLflow model folder the bundle sits under the pyfunc artifacts.
MLFLOW_SUBDIR = Path("artifacts") / "bundle"
MANIFEST_SHA_TAG = "modelyard.bundle_sha256"
"""Model version tag holding bundle.json's sha256, set when the version is registered,
so a fetched manifest is checked against the registry's record too."""
CHECKED_FILES = (ONNX_FILE, PROFILE_FILE)
BUNDLE_FILES = (MANIFEST, *CHECKED_FILES)

MODEL_NAME = r"[A-Za-z0-9_.\-]+"
"""What a registered model's name may hold (the one grammar every parser uses)."""
ALIAS = r"[A-Za-z0-9_\-]+"
"""What an alias may hold (``candidate``, ``staging``, ``production``, ...)."""

_SHORT_URI = re.compile(rf"^(?P<name>{MODEL_NAME})@(?P<alias>{ALIAS})$")


@dataclass(frozen=True)
class Bundle:
    """A validated bundle folder, plus where it came from in the registry."""

    path: Path
    manifest: dict[str, Any]
    """bundle.json as written, for writing it back unchanged; read :attr:`fields`."""
    version: str | None = None
    """Registry version when loaded through the registry, else None."""
    source_uri: str = ""
    from_cache_note: str | None = None
    """Set when the registry was unreachable and this copy came from the local cache."""

    @cached_property
    def fields(self) -> Manifest:
        """The manifest's typed fields (parsed, and checked, when the bundle is read)."""
        return parse_manifest(self.manifest, str(self.path))

    @property
    def name(self) -> str:
        return self.fields.name

    @property
    def task(self) -> str:
        return self.fields.task

    @property
    def labels(self) -> tuple[str, ...]:
        return self.fields.labels

    @property
    def kind(self) -> str:
        """What the bundle takes as input (``image``, ``text``, ...); see
        :mod:`modelyard.modality`."""
        return self.fields.kind

    @cached_property
    def modality(self) -> Modality[Any]:
        """The object that handles this bundle's kind of input (chosen once)."""
        from modelyard.modality import modality_for

        return modality_for(self.kind)

    @cached_property
    def preprocessing(self) -> Any:
        """The input spec of the bundle's kind (``ImageSpec``, ``TextSpec``, ...), parsed
        once: the server asks for it on every request; specs are frozen."""
        return self.modality.spec_from_dict(dict(self.fields.preprocessing))

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.fields.metrics)

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_FILE

    @cached_property
    def reference_profile(self) -> dict[str, Any]:
        return cast("dict[str, Any]", json.loads((self.path / PROFILE_FILE).read_text()))


def write_bundle(
    folder: Path,
    *,
    name: str,
    task: str,
    labels: tuple[str, ...],
    preprocessing: InputSpec,
    onnx_file: Path,
    reference_profile: dict[str, Any],
    metrics: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> Bundle:
    """Write a bundle folder and return it validated."""
    folder.mkdir(parents=True, exist_ok=True)
    if onnx_file.resolve() != (folder / ONNX_FILE).resolve():
        shutil.copyfile(onnx_file, folder / ONNX_FILE)
    (folder / PROFILE_FILE).write_text(json.dumps(reference_profile))
    files = {
        name: {"sha256": file_sha256(folder / name), "bytes": (folder / name).stat().st_size}
        for name in CHECKED_FILES
    }
    spec = preprocessing.to_dict()  # every spec records its kind
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "task": task,
        "kind": spec["kind"],
        "labels": list(labels),
        "preprocessing": spec,
        "metrics": metrics,
        **(extra or {}),
        FILES_KEY: files,
    }
    _write_manifest(folder, manifest)
    return read_bundle(folder)


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """The one place bundle.json is written (a test holds every other module to it)."""
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def update_manifest(bundle: Bundle, changes: dict[str, Any]) -> Bundle:
    """Rewrite ``bundle``'s bundle.json with ``changes`` applied and return it re-read.

    For results measured after the bundle was written (an INT8 comparison, say). The
    checked files and their recorded checksums cannot be changed this way: a bundle's
    model and profile are fixed once written.
    """
    if FILES_KEY in changes:
        raise BundleError(f"{FILES_KEY!r} is written by write_bundle only")
    _write_manifest(bundle.path, {**bundle.manifest, **changes})
    return read_bundle(bundle.path, bundle.version, bundle.source_uri, bundle.from_cache_note)


def read_bundle(
    folder: Path,
    version: str | None = None,
    source_uri: str = "",
    from_cache_note: str | None = None,
) -> Bundle:
    """Read and validate a bundle folder (or an MLflow model folder holding one)."""
    folder = Path(folder)
    if not (folder / MANIFEST).exists() and (folder / MLFLOW_SUBDIR / MANIFEST).exists():
        folder = folder / MLFLOW_SUBDIR
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise BundleError(
            f"{folder} is not a modelyard bundle (no {MANIFEST}); pass a bundle folder, "
            "models:/<name>@<alias> or <name>@<alias>"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise BundleError(f"{manifest_path} is not valid JSON: {error}") from error
    bundle = Bundle(folder, manifest, version, source_uri or str(folder), from_cache_note)
    validate(bundle)
    return bundle


def validate(bundle: Bundle) -> None:
    """Check the manifest's shape and that the files it promises are there."""
    written = bundle.manifest.get("format_version")
    # Checked before the fields: a newer format may shape them differently.
    if isinstance(written, int) and written > FORMAT_VERSION:
        raise BundleError(
            f"bundle {bundle.path} has format {written}; this "
            f"modelyard reads up to {FORMAT_VERSION}: upgrade modelyard"
        )
    bundle.fields  # noqa: B018 -- parses every typed field, naming the first malformed one
    from modelyard.modality import kinds

    if bundle.kind not in kinds():
        raise BundleError(
            f"bundle {bundle.path} has kind '{bundle.kind}'; this modelyard serves "
            f"{', '.join(kinds())}"
        )
    if len(bundle.labels) < 2:
        raise BundleError(f"bundle {bundle.path} must name at least two labels")
    for file in (ONNX_FILE, PROFILE_FILE):
        if not (bundle.path / file).is_file():
            raise BundleError(f"bundle {bundle.path} is missing {file}")
    for file in (MANIFEST, ONNX_FILE, PROFILE_FILE):
        require_inside(bundle.path / file, bundle.path)
    bundle.preprocessing  # noqa: B018 -- raises KeyError early if the spec is malformed


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Check each file against the sha256 ``manifest`` records; return the names checked.

    Raises :class:`ModelyardError` naming the first file that is missing or differs. A
    bundle written before checksums were recorded has nothing to check (empty list).
    """
    recorded = recorded_files(manifest, str(folder))
    for name, expected in sorted(recorded.items()):
        if name not in CHECKED_FILES:
            raise BundleError(f"bundle {folder} lists an unexpected file '{name}'")
        path = folder / name
        if not path.is_file():
            raise BundleError(f"bundle {folder} is missing {name}")
        if file_sha256(path) != expected.sha256:
            raise BundleError(
                f"bundle {folder}: {name} does not match the sha256 its manifest records "
                "(corrupt or tampered); fetch the model again"
            )
    return sorted(recorded)


def require_inside(path: Path, root: Path) -> None:
    """Refuse a path that resolves outside ``root`` (``..`` parts or a symlink out).

    A bundle downloaded from a registry is untrusted: a symlinked model.onnx must not
    make the server read an arbitrary file of the host.
    """
    if not path.resolve().is_relative_to(root.resolve()):
        raise BundleError(
            f"{path} points outside {root}; refusing it (path traversal). "
            "Re-export the bundle without links or '..' paths"
        )


def parse_model_uri(uri: str) -> str:
    """Normalise ``name@alias`` to MLflow's ``models:/name@alias``; pass others through."""
    match = _SHORT_URI.match(uri)
    if match and not Path(uri).exists():
        return f"models:/{match['name']}@{match['alias']}"
    return uri


BARE_NAME = re.compile(rf"^{MODEL_NAME}$")
"""A registered model's name on its own (no alias, version or path)."""


def _not_a_model(text: str) -> str:
    """What to write instead of ``text``, which is neither a folder nor a model URI."""
    if BARE_NAME.match(text) and not text.startswith("."):
        return (
            f"'{text}' is neither a bundle folder nor a model URI; for the registered "
            f"model write {text}@candidate (or another alias), or models:/{text}/<version>"
        )
    return (
        f"no bundle folder at {text} (and it is not a model URI); pass an existing "
        "bundle folder, <name>@<alias> or models:/<name>/<version>"
    )


def load(uri: str | Path, tracking_uri: str | None = None) -> Bundle:
    """Load a bundle from a folder, ``models:/name@alias``, ``models:/name/3`` or ``name@alias``.

    Registry models come through :mod:`modelyard.registry_client` (no MLflow import;
    verified copies cached under ``.modelyard/cache/bundles/``), or through MLflow's
    client for stores that module cannot read. Needs no torch.
    """
    text = str(uri)
    if Path(text).exists():
        return read_bundle(Path(text))
    text = parse_model_uri(text)
    if not text.startswith(("models:/", "runs:/")):
        raise UsageError(_not_a_model(text))
    from modelyard.registry_client import fetch_bundle

    fetched = fetch_bundle(text, tracking_uri)
    if fetched is not None:
        return read_bundle(fetched.folder, fetched.version, text, fetched.from_cache_note)
    from modelyard.registry import download_model

    folder, version = download_model(text, tracking_uri)
    return read_bundle(folder, version=version, source_uri=text)

"""The typed fields of a bundle's ``bundle.json``, parsed once when a bundle is read.

:func:`parse_manifest` turns the JSON object into a frozen :class:`Manifest` and
names the first field that has the wrong shape. Readers use its attributes
(``bundle.fields.cost.macs_per_example``), never string keys. Fields that newer
modelyards added (``run_id``, ``dataset``, ``onnx``, ``cost``, ``calibration``,
``final_fit``, ``quantization``, ``files``) are optional, so bundles written before
them still read. Keys this module does not know (a newer feature's record) are kept
in the raw JSON untouched: the manifest on disk is only ever written by
:func:`modelyard.bundle.write_bundle` and :func:`modelyard.bundle.update_manifest`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard, TypeVar

from modelyard.errors import BundleError

_T = TypeVar("_T")

FILES_KEY = "files"
"""``manifest["files"]``: ``{file name: {"sha256": hex, "bytes": n}}`` for every file
but the manifest itself, written at training time and checked when a bundle is
fetched from a registry or read back from the cache."""

DATA_CONFIG_KEY = "config"
"""Where ``dataset`` keeps the training data settings (``manifest["dataset"]["config"]``)."""


@dataclass(frozen=True)
class FileRecord:
    """The sha256 and size of one file of the bundle (``files``)."""

    sha256: str
    bytes: int | None


@dataclass(frozen=True)
class DatasetRecord:
    """The data the model was trained on (``dataset``)."""

    name: str
    uri: str
    fingerprint: str
    config: Mapping[str, Any] | None
    """The ``data`` settings, so evaluation and promotion score on the same data."""


@dataclass(frozen=True)
class OnnxRecord:
    """How the graph was exported (``onnx``); ``parity`` is absent after quantization."""

    input: str
    input_kind: str | None
    outputs: tuple[str, ...]
    opset: int | None
    parity: Mapping[str, Any] | None

    @property
    def max_abs_diff(self) -> float | None:
        """Largest torch vs ONNX Runtime probability difference, when it was checked."""
        value = (self.parity or {}).get("max_abs_diff_probabilities")
        return None if value is None else float(value)


@dataclass(frozen=True)
class CostRecord:
    """The graph's cost report (``cost``, see :mod:`modelyard.export.cost`)."""

    macs_per_example: float
    record: Mapping[str, Any]
    """Every figure of the report as written (parameters, latency, machine, ...)."""


@dataclass(frozen=True)
class QuantizationRecord:
    """How an INT8 bundle was made from its float32 source (``quantization``)."""

    method: str
    op_types: str | tuple[str, ...]
    """``"all"`` or the ONNX op types that were quantized."""
    fallback: bool
    """True when every-op quantization could not run and MatMul/Gemm only was kept."""
    calibration_examples: int | None
    """Training examples static quantization calibrated on (None: dynamic)."""
    speed_verdict: str | None
    """Why INT8 is not faster here, when it was measured not to be."""
    record: Mapping[str, Any]
    """Everything recorded (source version and metrics, comparison, verdict, ...)."""


@dataclass(frozen=True)
class Manifest:
    """``bundle.json``: what a bundle is, how it was made and what it measured."""

    format_version: int
    name: str
    task: str
    kind: str
    labels: tuple[str, ...]
    preprocessing: Mapping[str, Any]
    """The kind's input spec as stored; ``Bundle.preprocessing`` parses it."""
    metrics: Mapping[str, float]
    files: Mapping[str, FileRecord]
    """Empty for bundles written before checksums were recorded."""
    run_id: str | None = None
    dataset: DatasetRecord | None = None
    onnx: OnnxRecord | None = None
    cost: CostRecord | None = None
    calibration: Mapping[str, Any] | None = None
    final_fit: Mapping[str, Any] | None = None
    quantization: QuantizationRecord | None = None


REQUIRED = ("format_version", "name", "task", "kind", "labels", "preprocessing")


class _Reader:
    """Reads typed values out of one JSON object, naming the field when one is wrong."""

    def __init__(self, data: Mapping[str, Any], where: str, prefix: str = "") -> None:
        self.data, self.where, self.prefix = data, where, prefix

    def fail(self, key: str, expected: str) -> BundleError:
        value = self.data.get(key)
        return BundleError(
            f"bundle {self.where}: manifest field '{self.prefix}{key}' should be {expected}, "
            f"not {type(value).__name__} {value!r:.60}; the bundle is malformed or from an "
            "incompatible modelyard: re-export it"
        )

    def get(self, key: str, kind: type[_T], expected: str, default: Any = None) -> _T:
        value = self.data.get(key, default)
        # bool is an int to isinstance; a flag is never a count and vice versa.
        wrong_bool = isinstance(value, bool) and kind is not bool
        if not isinstance(value, kind) or wrong_bool:
            if key not in self.data and default is None:
                raise BundleError(f"bundle {self.where} manifest lacks {self.prefix}{key}")
            raise self.fail(key, expected)
        return value

    def optional(self, key: str, kind: type[_T], expected: str) -> _T | None:
        if self.data.get(key) is None:
            return None
        return self.get(key, kind, expected)

    def section(self, key: str) -> _Reader | None:
        value = self.optional(key, dict, "an object")
        return None if value is None else _Reader(value, self.where, f"{self.prefix}{key}.")

    def number(self, key: str) -> float:
        value = self.data.get(key)
        if not _is_number(value):
            raise self.fail(key, "a number")
        return float(value)

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list, "a list of strings")
        if not all(isinstance(value, str) for value in values):
            raise self.fail(key, "a list of strings")
        return tuple(values)

    def numbers(self, key: str) -> dict[str, float]:
        values = self.get(key, dict, "an object of numbers", default={})
        if not all(_is_number(value) for value in values.values()):
            raise self.fail(key, "an object of numbers")
        return dict(values)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def recorded_files(data: Mapping[str, Any], where: str) -> dict[str, FileRecord]:
    """Only the ``files`` checksums of bundle.json ``data``: what a fetched copy is
    verified against before the rest of the manifest is trusted."""
    if not isinstance(data, Mapping):
        raise BundleError(f"bundle {where}: bundle.json should hold a JSON object")
    return _files(_Reader(data, where))


def _files(manifest: _Reader) -> dict[str, FileRecord]:
    files = manifest.section(FILES_KEY)
    if files is None:
        return {}
    records = {}
    for name in files.data:
        entry = files.section(name)
        if entry is None:
            raise files.fail(name, "an object")
        records[name] = FileRecord(
            entry.get("sha256", str, "a hex string"), entry.optional("bytes", int, "an integer")
        )
    return records


def _dataset(section: _Reader | None) -> DatasetRecord | None:
    if section is None:
        return None
    return DatasetRecord(
        name=section.get("name", str, "a string", default=""),
        uri=section.get("uri", str, "a string", default=""),
        fingerprint=section.get("fingerprint", str, "a string", default=""),
        config=section.optional(DATA_CONFIG_KEY, dict, "an object"),
    )


def _onnx(section: _Reader | None) -> OnnxRecord | None:
    if section is None:
        return None
    return OnnxRecord(
        input=section.get("input", str, "a string"),
        input_kind=section.optional("input_kind", str, "a string"),
        outputs=section.strings("outputs") if "outputs" in section.data else (),
        opset=section.optional("opset", int, "an integer"),
        parity=section.optional("parity", dict, "an object"),
    )


def _cost(section: _Reader | None) -> CostRecord | None:
    if section is None:
        return None
    return CostRecord(section.number("macs_per_example"), section.data)


def _quantization(section: _Reader | None) -> QuantizationRecord | None:
    if section is None:
        return None
    calibration = section.section("calibration")
    op_types: str | tuple[str, ...]
    if isinstance(section.data.get("op_types"), str):
        op_types = section.get("op_types", str, '"all" or a list of op types')
    else:
        op_types = section.strings("op_types")
    return QuantizationRecord(
        method=section.get("method", str, "a string"),
        op_types=op_types,
        fallback=section.get("fallback", bool, "true or false", default=False),
        calibration_examples=calibration.optional("examples", int, "an integer")
        if calibration
        else None,
        speed_verdict=section.optional("speed_verdict", str, "a string"),
        record=section.data,
    )


def parse_manifest(data: object, where: str) -> Manifest:
    """The typed fields of ``data`` (bundle.json as parsed JSON), or a BundleError
    naming the first missing or malformed field (``where`` says which bundle)."""
    if not isinstance(data, dict):
        raise BundleError(f"bundle {where}: bundle.json should hold a JSON object")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise BundleError(f"bundle {where} manifest lacks {', '.join(missing)}")
    manifest = _Reader(data, where)
    return Manifest(
        format_version=manifest.get("format_version", int, "an integer"),
        name=manifest.get("name", str, "a string"),
        task=manifest.get("task", str, "a string"),
        kind=manifest.get("kind", str, "a string"),
        labels=manifest.strings("labels"),
        preprocessing=manifest.get("preprocessing", dict, "an object"),
        metrics=manifest.numbers("metrics"),
        files=_files(manifest),
        run_id=manifest.optional("run_id", str, "a string"),
        dataset=_dataset(manifest.section("dataset")),
        onnx=_onnx(manifest.section("onnx")),
        cost=_cost(manifest.section("cost")),
        calibration=manifest.optional("calibration", dict, "an object"),
        final_fit=manifest.optional("final_fit", dict, "an object"),
        quantization=_quantization(manifest.section("quantization")),
    )

"""Tabular rows: a fixed-length float32 feature vector per example.

A small kind, and the test of the :class:`~modelyard.modality.base.Modality` shape:
this module plus its registration line are all it takes for ``modelyard serve`` to
answer ``/v1`` (``{"instances": [[x1, ..., xF], ...]}``) and v2 (an FP32 ``[N, F]``
tensor) for a bundle of ``kind: tabular``, to log and profile its inputs, and to
load a labelled table (``data.path``: CSV/TSV/JSONL/Parquet, every column but
``data.label_column`` a numeric feature) for scoring.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from modelyard.errors import DataError
from modelyard.modality.base import Batch, Modality, non_finite_error
from modelyard.serve.errors import ClientError, PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from modelyard.config.schema import Config, DataConfig
    from modelyard.data.dataset import LabelledDataset
    from modelyard.predictor import Prediction, Predictor

SUMMARY_FEATURES = ("mean", "std", "min", "max")


@dataclass(frozen=True)
class TabularSpec:
    """How many features a row has; stored in every tabular bundle."""

    features: int

    def __post_init__(self) -> None:
        if self.features < 1:
            raise DataError(f"a tabular model needs at least one feature, got {self.features}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "tabular", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TabularSpec:
        return cls(features=int(data["features"]))


@dataclass(frozen=True)
class TabularSplit:
    """One split of a table (a :class:`~modelyard.data.dataset.LabelledDataset` holds three)."""

    rows: np.ndarray
    """float32 (N, F)."""
    labels: np.ndarray

    @property
    def examples(self) -> np.ndarray:
        """The raw examples, whatever the kind (every split type has them)."""
        return self.rows


def _checked_rows(rows: np.ndarray, where: str, spec: TabularSpec, max_rows: int) -> np.ndarray:
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != spec.features:
        raise ClientError(
            f"{where} has shape {list(rows.shape)}; expected [N, {spec.features}] "
            f"(N >= 1 rows of {spec.features} features)"
        )
    if rows.shape[0] > max_rows:
        raise PayloadTooLarge(f"{rows.shape[0]} rows exceed the limit of {max_rows} per request")
    if not np.all(np.isfinite(rows)):
        raise non_finite_error(where)
    return rows


class TabularModality(Modality[TabularSpec]):
    kind = "tabular"
    onnx_input_kind = "features"

    def spec_from_dict(self, data: dict[str, Any]) -> TabularSpec:
        return TabularSpec.from_dict(data)

    def decode_tensor(
        self, name: str, array: np.ndarray, spec: TabularSpec, max_rows: int, model: str
    ) -> Batch:
        if array.dtype != np.float32:
            raise ClientError(f"input '{name}' must be FP32 (N x {spec.features} features)")
        rows = _checked_rows(array, f"input '{name}'", spec, max_rows)
        return Batch(rows, rows)

    def decode_v1(
        self, body: bytes, content_type: str, spec: TabularSpec, max_rows: int, model: str
    ) -> Batch:
        if content_type and not content_type.startswith("application/json"):
            raise UnsupportedMediaType(
                f"content type '{content_type}' is not supported for tabular model {model}; "
                'send application/json {"instances": [[...], ...]}'
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise ClientError(f"request body is not valid JSON: {error}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
            raise ClientError(
                f'send {{"instances": [[...], ...]}}: rows of {spec.features} numbers'
            )
        instances = payload["instances"]
        if len(instances) > max_rows:
            raise PayloadTooLarge(
                f"{len(instances)} rows exceed the limit of {max_rows} per request"
            )
        if not all(
            isinstance(row, list)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in row)
            for row in instances
        ):
            raise ClientError("each instance must be a list of numbers")
        try:
            with np.errstate(over="ignore"):  # beyond float32: inf, refused just below
                rows = np.asarray(instances, dtype=np.float32)
        except ValueError:  # ragged rows
            raise ClientError(f"every instance must hold {spec.features} numbers") from None
        rows = _checked_rows(rows, "instances", spec, max_rows)
        return Batch(rows, rows)

    def metadata_inputs(self, spec: TabularSpec) -> list[dict[str, Any]]:
        from modelyard.bundle import INPUT_NAME

        return [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, spec.features]}]

    def metadata_parameters(self, spec: TabularSpec) -> dict[str, Any]:
        return {"features": spec.features}

    def warmup_input(self, spec: TabularSpec, rows: int) -> np.ndarray:
        return np.zeros((rows, spec.features), np.float32)

    def concatenate(self, observed: list[Any], spec: TabularSpec) -> np.ndarray:
        return np.concatenate(observed)

    def summaries(self, observed: Any) -> dict[str, np.ndarray]:
        """Each row's mean, spread and range of its features."""
        rows = np.asarray(observed, dtype=np.float64).reshape(len(observed), -1)
        if rows.shape[0] == 0:
            return {name: np.zeros(0) for name in SUMMARY_FEATURES}
        return {
            "mean": rows.mean(axis=1),
            "std": rows.std(axis=1),
            "min": rows.min(axis=1),
            "max": rows.max(axis=1),
        }

    def raw_inputs(self, observed: Any) -> list[bytes]:
        return [row.tobytes() for row in observed]

    def input_spec(self, cfg: Config) -> TabularSpec:
        columns, _ = self._table(cfg.data)
        return TabularSpec(features=len(columns))

    def _table(self, data: DataConfig) -> tuple[list[str], list[dict[str, Any]]]:
        """(feature columns, rows) of the configured table."""
        from modelyard.data.table import read_rows

        if not data.path:
            raise DataError("a tabular task needs data.path=<CSV/TSV/JSONL/Parquet file>")
        columns, rows = read_rows(Path(data.path))
        if data.label_column not in columns:
            raise DataError(
                f"{data.path} has no column '{data.label_column}' (data.label_column); "
                f"columns: {', '.join(columns)}"
            )
        return [c for c in columns if c != data.label_column], rows

    def load_dataset(self, data: DataConfig) -> LabelledDataset[TabularSplit]:
        """The table as float32 rows, split stratified like every other kind's data."""
        from modelyard.data.dataset import LabelledDataset
        from modelyard.data.split import stratified_indices

        columns, table = self._table(data)
        try:
            rows = np.array([[float(r[c]) for c in columns] for r in table], dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise DataError(f"{data.path}: every feature must be a number ({error})") from None
        found = sorted({str(r[data.label_column]) for r in table})
        class_names = tuple(data.labels) or tuple(found)
        unknown = set(found) - set(class_names)
        if unknown:
            raise DataError(
                f"{data.path}: labels {', '.join(sorted(unknown))} are not in data.labels"
            )
        index = {name: i for i, name in enumerate(class_names)}
        labels = np.array([index[str(r[data.label_column])] for r in table], dtype=np.int64)
        pool, test = stratified_indices(labels, data.test_fraction, data.split_seed, "test")
        keep, val = stratified_indices(labels[pool], data.val_fraction, data.split_seed, "val")
        train = pool[keep]
        val = pool[val]
        digest = hashlib.sha256(rows.tobytes() + labels.tobytes())
        digest.update("\0".join(class_names).encode())
        return LabelledDataset(
            name=Path(data.path or "").stem,
            uri=str(Path(data.path or "").resolve()),
            class_names=class_names,
            train=TabularSplit(rows[train], labels[train]),
            val=TabularSplit(rows[val], labels[val]),
            test=TabularSplit(rows[test], labels[test]),
            fingerprint=digest.hexdigest(),
        )

    def model_inputs(self, examples: Any, spec: TabularSpec) -> np.ndarray:
        return np.ascontiguousarray(examples, dtype=np.float32)

    def predict(self, predictor: Predictor, examples: Any) -> Prediction:
        return predictor.predict_inputs(np.ascontiguousarray(examples, dtype=np.float32))

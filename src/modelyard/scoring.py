"""Score a registered or local bundle: re-evaluate on a dataset split, or predict files."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelyard import bundle as bundle_io
from modelyard import tracking
from modelyard.bundle import Bundle
from modelyard.config.schema import Config
from modelyard.data.dataset import ArraySplit, Dataset
from modelyard.data.image_folder import IMAGE_SUFFIXES
from modelyard.data.text import TextDataset, TextSplit
from modelyard.errors import DataError, ModelyardError
from modelyard.evaluate import EvaluationReport, evaluate_probabilities, log_report
from modelyard.features.image import conform_images
from modelyard.predictor import Prediction, Predictor


@dataclass(frozen=True)
class Evaluation:
    report: EvaluationReport
    model: str
    version: str | None
    run_id: str | None


def split_for(model: Bundle, cfg: Config, split: str) -> tuple[Dataset, ArraySplit]:
    """A split of the configured dataset, checked against the model's labels and
    converted to its input size: what every offline scoring of a bundle starts from."""
    from modelyard.data import load_dataset

    dataset = load_dataset(cfg.data)
    if tuple(dataset.class_names) != model.labels:
        raise ModelyardError(
            f"dataset '{dataset.name}' has classes {list(dataset.class_names)} but model "
            f"'{model.name}' predicts {list(model.labels)}; pass the model's task "
            f"(task={model.task})"
        )
    data = dataset.split(split)
    return dataset, ArraySplit(conform_images(data.images, model.preprocessing), data.labels)


def _text_split(model: Bundle, cfg: Config, split: str) -> tuple[TextDataset, TextSplit]:
    """A split of the configured text dataset, checked against the model's labels."""
    from modelyard.data import load_text_dataset

    if cfg.task.kind != "text":
        raise ModelyardError(
            f"model '{model.name}' is a text model; pass a text task (task={model.task})"
        )
    dataset = load_text_dataset(cfg.data)
    if tuple(dataset.class_names) != model.labels:
        raise ModelyardError(
            f"dataset '{dataset.name}' has classes {list(dataset.class_names)} but model "
            f"'{model.name}' predicts {list(model.labels)}; pass the model's task "
            f"(task={model.task})"
        )
    return dataset, dataset.split(split)


def evaluate_model(
    model_uri: str, cfg: Config, split: str = "test", log: bool = True
) -> Evaluation:
    """Re-evaluate a bundle through ONNX Runtime on a split of the configured dataset.

    With ``log`` the report goes into a new MLflow run of the task's experiment,
    tagged with the model it evaluated.
    """
    loaded = bundle_io.load(model_uri, cfg.tracking.uri)
    dataset: Dataset | TextDataset
    if loaded.kind == "text":
        dataset, texts = _text_split(loaded, cfg, split)
        prediction = Predictor(loaded).predict_texts(list(texts.texts))
        report = evaluate_probabilities(
            texts.labels, prediction.probabilities, loaded.labels, split, list(texts.texts)
        )
    else:
        dataset, data = split_for(loaded, cfg, split)
        prediction = Predictor(loaded).predict_images(data.images)
        report = evaluate_probabilities(data.labels, prediction.probabilities, loaded.labels, split)
    run_id = None
    if log:
        import mlflow

        tracking.configure(cfg.tracking.uri)
        experiment_id = tracking.ensure_experiment(cfg.tracking.experiment or cfg.task.name)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"evaluate {loaded.name}"
        ) as run:
            mlflow.set_tags(
                {
                    "modelyard.kind": "evaluation",
                    "modelyard.model": loaded.name,
                    "modelyard.model_version": loaded.version or "local",
                    "modelyard.model_uri": str(model_uri),
                    "modelyard.dataset_fingerprint": dataset.fingerprint,
                }
            )
            log_report(report)
            run_id = run.info.run_id
    return Evaluation(report=report, model=loaded.name, version=loaded.version, run_id=run_id)


def collect_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Expand folders (recursively) into their image files; keep files and .npy as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise DataError(f"folder {path} holds no images (PNG/JPEG)")
            found.extend(images)
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"{path} does not exist; pass image files, folders or a .npy file")
    return found


def _load_npy(path: Path, predictor: Predictor) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable .npy array: {error}") from error
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.dtype != np.uint8:
        raise DataError(
            f"{path} holds {array.dtype} {array.shape}; expected uint8 images (N, H, W[, C])"
        )
    return conform_images(array, predictor.spec)


def read_texts(paths: Sequence[str | Path], text_column: str = "text") -> list[tuple[str, str]]:
    """(where, text) pairs: one text per non-empty line of a .txt file, or the
    ``text_column`` of a CSV/TSV/JSONL/Parquet table, row by row."""
    from modelyard.data.table import TABLE_SUFFIXES, read_rows

    found: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise DataError(f"{path} does not exist; pass .txt files (one text per line) or tables")
        if path.suffix.lower() in TABLE_SUFFIXES:
            columns, rows = read_rows(path)
            if text_column not in columns:
                raise DataError(
                    f"{path} has no column '{text_column}'; its columns are "
                    f"{', '.join(columns) or '(none)'}; pass --text-column"
                )
            found += [(f"{path}:{i}", str(row[text_column] or "")) for i, row in enumerate(rows)]
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise DataError(f"{path} is not UTF-8 (byte {error.start})") from None
        found += [(f"{path}:{i + 1}", line) for i, line in enumerate(lines) if line.strip()]
    if not found:
        raise DataError("no texts found in the given files")
    return found


def _texts_to_csv(loaded: Bundle, texts: list[tuple[str, str]], out: Path) -> int:
    prediction = Predictor(loaded).predict_texts([text for _, text in texts])
    assert prediction.truncated is not None
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["source", "text", "label", "confidence", "truncated"]
            + [f"p_{label}" for label in loaded.labels]
        )
        for (where, text), probs, cut in zip(
            texts, prediction.probabilities, prediction.truncated, strict=True
        ):
            writer.writerow(
                [where, text, loaded.labels[int(probs.argmax())], f"{probs.max():.6f}", cut]
                + [f"{p:.6f}" for p in probs]
            )
    return len(texts)


def predict_to_csv(
    model_uri: str, inputs: Sequence[str | Path], out: Path, text_column: str = "text"
) -> int:
    """Score images (files, folders, .npy) or, for a text model, texts (.txt lines or a
    table's ``text_column``), and write one CSV row per input; return rows."""
    loaded = bundle_io.load(model_uri)
    if loaded.kind == "text":
        return _texts_to_csv(loaded, read_texts(inputs, text_column), out)
    predictor = Predictor(loaded)
    rows: list[tuple[str, Prediction, int]] = []
    files = collect_inputs(inputs)
    image_files = [f for f in files if f.suffix.lower() != ".npy"]
    if image_files:
        prediction = predictor.predict_files(image_files)
        rows += [(str(f), prediction, i) for i, f in enumerate(image_files)]
    for npy in (f for f in files if f.suffix.lower() == ".npy"):
        prediction = predictor.predict_images(_load_npy(npy, predictor))
        rows += [(f"{npy}[{i}]", prediction, i) for i in range(len(prediction.probabilities))]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "confidence", *(f"p_{label}" for label in loaded.labels)])
        for name, prediction, i in rows:
            probs = prediction.probabilities[i]
            writer.writerow(
                [
                    name,
                    loaded.labels[int(probs.argmax())],
                    f"{probs.max():.6f}",
                    *(f"{p:.6f}" for p in probs),
                ]
            )
    return len(rows)

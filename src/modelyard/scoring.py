"""Score a registered or local bundle on a split of its dataset: re-evaluation, the
promotion gate and the INT8 comparison all start here, for image and text models alike.

A bundle records the data configuration it was trained on, so scoring it needs no
data overrides: :func:`config_for` composes the bundle's task and data, and the
user's explicit overrides win over both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard import bundle as bundle_io
from modelyard.bundle import Bundle
from modelyard.config.overrides import overridden_keys, override_key, override_value
from modelyard.config.schema import Config, DataConfig, check_paths, validate
from modelyard.errors import ConfigError
from modelyard.predictor import Prediction, Predictor

# MLflow, scikit-learn and the data loaders load only once the model and its config
# have been checked, so a mistyped path or key fails in about a second.
if TYPE_CHECKING:
    from modelyard.evaluate import EvaluationReport


@dataclass(frozen=True)
class Evaluation:
    report: EvaluationReport
    model: str
    version: str | None
    run_id: str | None


@dataclass(frozen=True)
class LabelledSplit:
    """One split of a model's dataset as the model's raw examples.

    ``examples`` are what the kind's :class:`~modelyard.modality.Modality` loads (uint8
    images (N, H, W, C) at the dataset's configured size, an (N,) array of str, ...);
    :func:`predict_examples` and :func:`model_inputs` bring them to any bundle's own
    input.
    """

    kind: str
    examples: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    dataset_name: str
    fingerprint: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def recorded_data_config(model: Bundle) -> dict[str, Any] | None:
    """The ``data`` settings the bundle was trained with (None for older bundles)."""
    dataset = model.fields.dataset
    return dict(dataset.config) if dataset and dataset.config is not None else None


def config_for(model: Bundle, overrides: Sequence[str] = ()) -> Config:
    """The config that scores ``model``: its own task and training data settings,
    with ``overrides`` on top.

    ``task=...`` in ``overrides`` picks another task's data, and then the bundle's
    recorded data settings are not used; ``data.<key>=...`` replaces that one key.
    """
    from modelyard.config import compose_config

    overrides = list(overrides)
    own_task = not any(override_key(o) == "task" for o in overrides)
    if own_task:
        overrides.insert(0, f"task={model.task}")
    recorded = recorded_data_config(model) if own_task else None
    if not recorded:
        return compose_config(overrides)
    # The task's own defaults may be incomplete (text_table has no data.path), so
    # validate only once the recorded settings are in.
    cfg = compose_config(overrides, validated=False)
    explicit = overridden_keys(overrides, "data")
    known = {f.name for f in fields(DataConfig)}
    for key, value in recorded.items():
        if key in known and key not in explicit:
            setattr(cfg.data, key, value)
    return check_paths(validate(cfg))


def record_data_config(data: DataConfig) -> dict[str, Any]:
    """The training data settings as stored in ``bundle.json``, with ``path`` absolute
    so a later ``evaluate`` or ``promote`` from another folder finds the same data."""
    recorded = {f.name: getattr(data, f.name) for f in fields(DataConfig)}
    if data.path:
        recorded["path"] = str(Path(data.path).expanduser().resolve())
    recorded["files"] = dict(data.files)
    recorded["labels"] = list(data.labels)
    return recorded


def labelled_split(model: Bundle, cfg: Config, split: str) -> LabelledSplit:
    """``split`` of the configured dataset, checked against the model's kind and labels."""
    if cfg.task.kind != model.kind:
        raise ConfigError(
            f"model '{model.name}' is a {model.kind} model but task '{cfg.task.name}' has "
            f"{cfg.task.kind} data; pass the model's task (task={model.task})"
        )
    modality = model.modality
    dataset = modality.load_dataset(cfg.data)
    part = modality.split_examples(dataset, split)
    found = LabelledSplit(
        model.kind,
        part.examples,
        part.labels,
        dataset.class_names,
        dataset.name,
        dataset.fingerprint,
    )
    if found.class_names != model.labels:
        raise ConfigError(
            f"dataset '{found.dataset_name}' has classes {', '.join(found.class_names)} but "
            f"model '{model.name}' predicts {', '.join(model.labels)}; pass the model's task "
            f"(task={model.task}) and the data it was trained on"
        )
    return found


def predict_examples(predictor: Predictor, examples: np.ndarray) -> Prediction:
    """Predict raw examples (images at any size, texts, ...) with the predictor's bundle."""
    return predictor.bundle.modality.predict(predictor, examples)


def model_inputs(model: Bundle, examples: np.ndarray) -> np.ndarray:
    """Raw examples as one ONNX input batch of ``model``'s own input (normalised
    float32 images, text n-gram ids padded to the batch's longest text, ...)."""
    return model.modality.model_inputs(examples, model.preprocessing)


def tracking_uri_in(overrides: Sequence[str]) -> str | None:
    """The ``tracking.uri=...`` among ``overrides``: a bundle must be fetched from the
    registry before its own task's config can be composed."""
    return override_value(overrides, "tracking.uri")


def evaluate_model(
    model_uri: str, overrides: Sequence[str] = (), split: str = "test", log: bool = True
) -> Evaluation:
    """Re-evaluate a bundle through ONNX Runtime on a split of its dataset.

    The data is the model's own (its task and recorded data settings) unless
    ``overrides`` say otherwise. With ``log`` the report goes into a new MLflow run
    of the task's experiment, tagged with the model it evaluated.
    """
    loaded = bundle_io.load(model_uri, tracking_uri_in(overrides))
    cfg = config_for(loaded, overrides)
    from modelyard.evaluate import evaluate_probabilities

    data = labelled_split(loaded, cfg, split)
    prediction = predict_examples(Predictor(loaded), data.examples)
    texts = loaded.modality.evaluation_texts(data.examples)
    report = evaluate_probabilities(
        data.labels, prediction.probabilities, loaded.labels, split, texts
    )
    run_id = None
    if log:
        tags = {
            "modelyard.kind": "evaluation",
            "modelyard.model": loaded.name,
            "modelyard.model_version": loaded.version or "local",
            "modelyard.model_uri": str(model_uri),
            "modelyard.dataset_fingerprint": data.fingerprint,
        }
        run_id = _log_evaluation(report, cfg, f"evaluate {loaded.name}", tags)
    return Evaluation(report=report, model=loaded.name, version=loaded.version, run_id=run_id)


def _log_evaluation(
    report: EvaluationReport, cfg: Config, run_name: str, tags: dict[str, str]
) -> str:
    """``report`` in a new MLflow run of the task's experiment; its id.

    The run's opening writes and its end are held from Ctrl-C
    (:func:`~modelyard.tracking.ctrl_c_after_write`), as training's are: a press inside
    an SQLite write leaves the store locked, and the write that ends the run then
    failed after 20 s with MLflow's traceback, leaving it RUNNING. A Ctrl-C now ends
    the run ``KILLED`` with what it had written."""
    import mlflow

    from modelyard import tracking
    from modelyard.evaluate import log_report

    tracking.configure(cfg.tracking.uri)
    experiment_id = tracking.ensure_experiment(cfg.tracking.experiment or cfg.task.name)
    run = None
    status = "FAILED"
    try:
        with tracking.ctrl_c_after_write():
            run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name)
            mlflow.set_tags(tags)
        log_report(report)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if run is not None:
            _end_evaluation(run.info.run_id, status)
    assert run is not None  # the try ran through, or raised
    return str(run.info.run_id)


def _end_evaluation(run_id: str, status: str) -> None:
    """End the evaluation's run with ``status``; a Ctrl-C held through a FINISHED end
    says that the evaluation was logged whole, not just "interrupted"."""
    import mlflow

    from modelyard import tracking

    try:
        with tracking.ctrl_c_after_write():
            mlflow.end_run(status)
    except KeyboardInterrupt as late:
        if status != "FINISHED":
            raise
        raise KeyboardInterrupt(
            f"interrupted after MLflow run {run_id} had finished: the evaluation is "
            "logged there whole"
        ) from late

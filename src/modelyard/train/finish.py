"""After fitting: export, parity check, evaluation, reference profile, bundle, registry."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from torch import nn

from modelyard import registry, tracking
from modelyard.bundle import INPUT_NAME, ONNX_FILE, Bundle, write_bundle
from modelyard.config.schema import Config
from modelyard.data.dataset import Dataset
from modelyard.data.text import TextDataset
from modelyard.evaluate import EvaluationReport, evaluate_probabilities, log_report, plot_curves
from modelyard.export.cost import cost_report, mlflow_figures
from modelyard.export.onnx import ParityReport, check_parity, export_onnx
from modelyard.manifest import DATA_CONFIG_KEY
from modelyard.mlflow_model import log_bundle_model
from modelyard.modality import InputSpec, Modality, modality_for
from modelyard.monitor.profile import sample_indices
from modelyard.paths import bundle_dir
from modelyard.predictor import Prediction, Predictor
from modelyard.scoring import record_data_config
from modelyard.train.calibrate import scale_classifier
from modelyard.train.refit import Refit


@dataclass(frozen=True)
class Finished:
    bundle: Bundle
    report: EvaluationReport
    parity: ParityReport
    model_uri: str
    version: str | None


def _history(run_id: str) -> dict[str, list[tuple[int, float]]]:
    client = mlflow.tracking.MlflowClient()
    return {
        name: [(m.step, m.value) for m in client.get_metric_history(run_id, name)]
        for name in ("train_loss", "train_acc", "val_loss", "val_acc")
    }


def _evaluate(
    kind: Modality[Any], predictor: Predictor, dataset: Dataset | TextDataset, split: str
) -> tuple[Prediction, EvaluationReport]:
    data = kind.split_examples(dataset, split)
    prediction = kind.predict(predictor, data.examples)
    report = evaluate_probabilities(
        data.labels,
        prediction.probabilities,
        dataset.class_names,
        split,
        texts=kind.evaluation_texts(data.examples),
    )
    return prediction, report


def _profile(
    kind: Modality[Any], predictor: Predictor, dataset: Dataset | TextDataset, seed: int
) -> dict[str, Any]:
    # Only the sampled rows enter the profile, so only they are predicted
    # (the full MNIST training set would be 54k images for 2k kept).
    keep = sample_indices(len(dataset.train), seed=seed)
    sampled = kind.split_examples(dataset, "train").examples[keep]
    pred = kind.predict(predictor, sampled)
    return kind.reference_profile(sampled, pred.probabilities, pred.embedding, dataset.class_names)


def _export_checked(
    model: nn.Module,
    test_inputs: Any,
    folder: Path,
    cfg: Config,
    kind: Modality[Any],
    spec: InputSpec,
    labels: tuple[str, ...],
) -> tuple[Path, ParityReport, Bundle]:
    """Export ``model`` to ONNX, check parity with torch, and wrap the graph in a
    provisional bundle (no profile or metrics yet) that ONNX Runtime can predict with."""
    folder.mkdir(parents=True)
    onnx_path = export_onnx(
        model, test_inputs, folder / ONNX_FILE, cfg.export.opset, input_axes=kind.onnx_input_axes
    )
    parity = check_parity(
        model, onnx_path, test_inputs[: cfg.export.parity_samples], cfg.export.parity_atol
    )
    provisional = write_bundle(
        folder,
        name=cfg.task.model_name,
        task=cfg.task.name,
        labels=labels,
        preprocessing=spec,
        onnx_file=onnx_path,
        reference_profile={},
        metrics={},
    )
    return onnx_path, parity, provisional


@dataclass(frozen=True)
class _Evaluated:
    """The held-out fit, exported and scored through ONNX Runtime."""

    onnx_path: Path
    parity: ParityReport
    predictor: Predictor
    test_prediction: Prediction
    report: EvaluationReport
    val_report: EvaluationReport


def _calibrate(
    cfg: Config,
    model: nn.Module,
    kind: Modality[Any],
    dataset: Dataset | TextDataset,
    spec: InputSpec,
    final: Refit | None,
) -> dict[str, float]:
    """Fit a temperature on val when ``train.calibrate`` asks (empty dict otherwise).

    The refit saw val, so it takes the held-out fit's temperature rather than its own.
    """
    if not cfg.train.calibrate:
        return {}
    from modelyard.train.calibrate import calibrate_classifier

    calibration = calibrate_classifier(model, kind, dataset, spec)
    with tracking.ctrl_c_after_write():  # see tracking.ctrl_c_after_write: the store's lock
        mlflow.log_metrics(calibration)
    if final is not None:
        scale_classifier(final.model, calibration["calibration_temperature"])
    return calibration


def _evaluate_held_out(
    cfg: Config,
    model: nn.Module,
    kind: Modality[Any],
    dataset: Dataset | TextDataset,
    spec: InputSpec,
    test_inputs: Any,
    run_id: str,
    work: Path,
) -> _Evaluated:
    """Export the held-out fit and evaluate it through ONNX Runtime, so the logged
    numbers describe what will be served; log parity, reports and training curves."""
    onnx_path, parity, provisional = _export_checked(
        model, test_inputs, work / "held-out", cfg, kind, spec, dataset.class_names
    )
    with tracking.ctrl_c_after_write():
        mlflow.log_metrics(
            {
                "onnx_parity_max_abs_diff": parity.max_abs_diff_probabilities,
                "onnx_parity_argmax_agreement": parity.argmax_agreement,
            }
        )
    predictor = Predictor(provisional)
    test_pred, report = _evaluate(kind, predictor, dataset, "test")
    _, val_report = _evaluate(kind, predictor, dataset, "val")
    log_report(report)
    with tracking.ctrl_c_after_write():
        mlflow.log_metrics(val_report.metrics(prefix="best_"))
    curves = plot_curves(_history(run_id), work / "training_curves.png")
    mlflow.log_artifact(str(curves), artifact_path="evaluation")
    return _Evaluated(onnx_path, parity, predictor, test_pred, report, val_report)


def _swap_in_refit(
    cfg: Config,
    final: Refit,
    kind: Modality[Any],
    dataset: Dataset | TextDataset,
    spec: InputSpec,
    test_inputs: Any,
    test_examples: Any,
    held_out: _Evaluated,
    work: Path,
) -> _Evaluated:
    """Export the refit (``train.refit``): its graph, parity and predictions replace the
    held-out fit's, while the metrics stay the held-out fit's (the refit saw val)."""
    final_model = final.model.float().eval().cpu()
    onnx_path, parity, final_bundle = _export_checked(
        final_model, test_inputs, work / "final", cfg, kind, spec, dataset.class_names
    )
    predictor = Predictor(final_bundle)
    test_pred = kind.predict(predictor, test_examples[:4])
    return _Evaluated(onnx_path, parity, predictor, test_pred, held_out.report, held_out.val_report)


def _log_cost(cfg: Config, onnx_path: Path, test_inputs: Any) -> dict[str, Any]:
    """Measure the bundled graph's cost, log it to MLflow and return the report."""
    cost = cost_report(onnx_path, test_inputs, cfg.export.cost_repeats).to_dict()
    cost_metrics, cost_params = mlflow_figures(cost)
    with tracking.ctrl_c_after_write():
        mlflow.log_metrics(cost_metrics)
        mlflow.log_params(cost_params)
    return cost


def _manifest_extra(
    cfg: Config,
    run_id: str,
    kind: Modality[Any],
    dataset: Dataset | TextDataset,
    calibration: dict[str, float],
    final: Refit | None,
    cost: dict[str, Any],
    parity: ParityReport,
) -> dict[str, Any]:
    """The manifest's training-time record: run, dataset, calibration, refit, cost, ONNX."""
    return {
        "run_id": run_id,
        "dataset": {
            "name": dataset.name,
            "uri": dataset.uri,
            "fingerprint": dataset.fingerprint,
            # evaluate/promote score the bundle on this data without overrides
            DATA_CONFIG_KEY: record_data_config(cfg.data),
        },
        **({"calibration": {**calibration, "fitted_on": "val"}} if calibration else {}),
        **({"final_fit": final.record} if final is not None else {}),
        "cost": cost,
        "onnx": {
            "input": INPUT_NAME,
            "input_kind": kind.onnx_input_kind,
            "outputs": ["logits", "probabilities", "embedding"],
            "opset": cfg.export.opset,
            "parity": parity.to_dict(),
        },
    }


def finish(
    cfg: Config,
    model: nn.Module,
    dataset: Dataset | TextDataset,
    spec: InputSpec,
    run_id: str,
    final: Refit | None = None,
    extra: dict[str, Any] | None = None,
) -> Finished:
    """Turn a fitted model into a registered, parity-checked bundle, logged in ``run_id``.

    ``extra`` joins bundle.json's training-time record (``modelyard distill`` records
    its teacher there).

    With ``final`` (``train.refit``) ``model`` is the held-out fit, which the metrics
    describe, and ``final.model`` (fitted on every labelled example, calibrated with
    the held-out fit's temperature) is the one exported, bundled and registered.
    """
    model = model.float().eval().cpu()
    kind = modality_for(cfg.task.kind)
    # The first real test examples as model input (for export and parity).
    test_examples = kind.split_examples(dataset, "test").examples
    test_inputs = kind.model_inputs(test_examples[: max(cfg.export.parity_samples, 2)], spec)
    calibration = _calibrate(cfg, model, kind, dataset, spec, final)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        held_out = _evaluate_held_out(cfg, model, kind, dataset, spec, test_inputs, run_id, work)
        bundled = held_out
        if final is not None:
            bundled = _swap_in_refit(
                cfg, final, kind, dataset, spec, test_inputs, test_examples, held_out, work
            )
        profile = _profile(kind, bundled.predictor, dataset, cfg.train.seed)
        # The cost of the graph that is bundled (the refit's when there is one).
        cost = _log_cost(cfg, bundled.onnx_path, test_inputs)
        report, val_report = held_out.report, held_out.val_report
        bundle = write_bundle(
            bundle_dir(run_id),
            name=cfg.task.model_name,
            task=cfg.task.name,
            labels=dataset.class_names,
            preprocessing=spec,
            onnx_file=bundled.onnx_path,
            reference_profile=profile,
            metrics={**report.metrics(), **val_report.metrics(prefix="best_"), **calibration},
            extra={
                **_manifest_extra(
                    cfg, run_id, kind, dataset, calibration, final, cost, bundled.parity
                ),
                **(extra or {}),
            },
        )
        examples = kind.signature_examples(test_examples[:4])
        probabilities = bundled.test_prediction.probabilities[:4]
        model_uri = log_bundle_model(bundle.path, examples, probabilities)
        version = None
        if cfg.tracking.register:
            version = registry.register(model_uri, cfg.task.model_name, bundle_dir=bundle.path)
    return Finished(
        bundle=bundle, report=report, parity=bundled.parity, model_uri=model_uri, version=version
    )

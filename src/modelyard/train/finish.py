"""After fitting: export, parity check, evaluation, reference profile, bundle, registry."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from torch import nn

from modelyard import registry
from modelyard.bundle import Bundle, write_bundle
from modelyard.config.schema import Config
from modelyard.data.dataset import Dataset
from modelyard.evaluate import EvaluationReport, evaluate_probabilities, log_report, plot_curves
from modelyard.export.onnx import ParityReport, check_parity, export_onnx
from modelyard.features.image import ImageSpec, to_model_input
from modelyard.mlflow_model import log_bundle_model
from modelyard.monitor.profile import build_reference_profile, sample_indices
from modelyard.paths import bundle_dir
from modelyard.predictor import Predictor


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


def finish(
    cfg: Config, model: nn.Module, dataset: Dataset, spec: ImageSpec, run_id: str
) -> Finished:
    """Turn a fitted model into a registered, parity-checked bundle, logged in ``run_id``."""
    model = model.float().eval().cpu()
    test_inputs = to_model_input(dataset.test.images, spec)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        onnx_path = export_onnx(model, test_inputs, work / "model.onnx", cfg.export.opset)
        parity = check_parity(
            model, onnx_path, test_inputs[: cfg.export.parity_samples], cfg.export.parity_atol
        )
        mlflow.log_metrics(
            {
                "onnx_parity_max_abs_diff": parity.max_abs_diff_probabilities,
                "onnx_parity_argmax_agreement": parity.argmax_agreement,
            }
        )
        # Evaluate through ONNX Runtime: the numbers describe what will be served.
        provisional = write_bundle(
            work / "provisional",
            name=cfg.task.model_name,
            task=cfg.task.name,
            labels=dataset.class_names,
            preprocessing=spec,
            onnx_file=onnx_path,
            reference_profile={},
            metrics={},
        )
        predictor = Predictor(provisional)
        test_pred = predictor.predict_images(dataset.test.images)
        report = evaluate_probabilities(
            dataset.test.labels, test_pred.probabilities, dataset.class_names, "test"
        )
        val_pred = predictor.predict_images(dataset.val.images)
        val_report = evaluate_probabilities(
            dataset.val.labels, val_pred.probabilities, dataset.class_names, "val"
        )
        log_report(report)
        mlflow.log_metrics(val_report.metrics(prefix="best_"))
        curves = plot_curves(_history(run_id), work / "training_curves.png")
        mlflow.log_artifact(str(curves), artifact_path="evaluation")

        # Only the sampled rows enter the profile, so only they are predicted
        # (the full MNIST training set would be 54k images for 2k kept).
        sampled = dataset.train.images[sample_indices(len(dataset.train), seed=cfg.train.seed)]
        train_pred = predictor.predict_images(sampled)
        profile = build_reference_profile(
            sampled,
            train_pred.probabilities,
            train_pred.embedding,
            dataset.class_names,
            seed=cfg.train.seed,
        )
        metrics = {**report.metrics(), **val_report.metrics(prefix="best_")}
        bundle = write_bundle(
            bundle_dir(run_id),
            name=cfg.task.model_name,
            task=cfg.task.name,
            labels=dataset.class_names,
            preprocessing=spec,
            onnx_file=onnx_path,
            reference_profile=profile,
            metrics=metrics,
            extra={
                "run_id": run_id,
                "dataset": {
                    "name": dataset.name,
                    "uri": dataset.uri,
                    "fingerprint": dataset.fingerprint,
                },
                "onnx": {
                    "input": "input",
                    "outputs": ["logits", "probabilities", "embedding"],
                    "opset": cfg.export.opset,
                    "parity": parity.to_dict(),
                },
            },
        )
        model_uri = log_bundle_model(
            bundle.path, dataset.test.images[:4], test_pred.probabilities[:4]
        )
        version = None
        if cfg.tracking.register:
            version = registry.register(model_uri, cfg.task.model_name)
    return Finished(
        bundle=bundle, report=report, parity=parity, model_uri=model_uri, version=version
    )

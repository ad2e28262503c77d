"""train.calibrate: the fitted temperature is folded into the classifier before export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.text_fixtures import SENTENCES, write_ud_fixture

from modelyard.calibration import fit_temperature
from modelyard.config import compose_config
from modelyard.data import load_text_dataset
from modelyard.modality import modality_for
from modelyard.models import build_text_model
from modelyard.train.calibrate import calibrate_classifier, logits_of


def test_folding_divides_logits_and_keeps_every_argmax(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_config(
        ["task=langid_nordic", f"data.path={write_ud_fixture(tmp_path)}", "text.buckets=512"]
    )
    kind = modality_for("text")
    spec = kind.input_spec(cfg)
    dataset = load_text_dataset(cfg.data)
    torch.manual_seed(0)
    model = build_text_model(cfg.model, spec.vocab_size, len(dataset.class_names)).eval()
    texts = [s for sents in SENTENCES.values() for s in sents]
    before = logits_of(model, kind, texts, spec)
    report = calibrate_classifier(model, kind, dataset, spec)
    after = logits_of(model, kind, texts, spec)
    temperature = report["calibration_temperature"]
    val = kind.split_examples(dataset, "val")
    # The temperature is the one that fits the validation split's logits best.
    assert temperature == pytest.approx(
        fit_temperature(logits_of(model, kind, val.examples, spec) * temperature, val.labels),
        rel=1e-3,
    )
    np.testing.assert_allclose(after, before / temperature, rtol=1e-4, atol=1e-5)
    assert (after.argmax(axis=1) == before.argmax(axis=1)).all()
    assert report["val_ece"] <= report["val_ece_uncalibrated"] + 1e-9


@pytest.mark.slow
def test_trained_text_bundle_records_its_calibration(trained_text, use_session_home) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    from modelyard import bundle

    loaded = bundle.load(str(trained_text.bundle_path))
    calibration = loaded.manifest["calibration"]
    assert calibration["fitted_on"] == "val" and calibration["calibration_temperature"] > 0
    metrics = MlflowClient().get_run(trained_text.run_id).data.metrics
    assert 0.0 <= metrics["test_ece"] <= 1.0
    assert metrics["calibration_temperature"] == calibration["calibration_temperature"]

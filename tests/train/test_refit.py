"""train.refit: the registered model is fitted on all labelled data; metrics stay the
held-out fit's, and the run and bundle say so."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import TEXT_FAST
from tests.text_fixtures import write_ud_fixture

from modelyard.config import Config, compose_config
from modelyard.data import load_text_dataset
from modelyard.data.text import TextDataset
from modelyard.errors import ConfigError
from modelyard.train.refit import all_labelled, refit_on_all


def test_all_labelled_trains_on_every_split(tmp_path: Path) -> None:
    cfg = compose_config(["task=langid_nordic", f"data.path={write_ud_fixture(tmp_path)}"])
    data = load_text_dataset(cfg.data)
    everything = all_labelled(data)
    assert len(everything.train) == len(data.train) + len(data.val) + len(data.test)
    assert set(everything.train.texts) == set(data.train.texts) | set(data.val.texts) | set(
        data.test.texts
    )
    assert everything.test is data.test and everything.fingerprint != data.fingerprint
    assert np.array_equal(everything.train.labels[: len(data.train)], data.train.labels)


def test_refit_is_refused_for_a_kind_that_does_not_refit() -> None:
    def fit(cfg: Config, data: TextDataset) -> torch.nn.Module:
        raise AssertionError("refused before fitting")

    message = "train.refit is for text tasks; set train.refit=false"
    with pytest.raises(ConfigError, match=re.escape(message)):
        refit_on_all(compose_config(["task=digits"]), None, 3, fit)


@pytest.mark.slow
def test_refit_registers_the_all_data_model_with_held_out_metrics(
    tmp_path: Path,
    use_session_home: Path,
) -> None:
    from mlflow.tracking import MlflowClient

    from modelyard import bundle
    from modelyard.predictor import Predictor
    from modelyard.train.run import train

    folder = write_ud_fixture(tmp_path / "ud", copies=2)
    fast = [a for a in TEXT_FAST if not a.startswith("train.refit=")]
    # Pinned threads, so both fits sum alike (see test_same_seed_same_metrics).
    args = [*fast, f"data.path={folder}", "tracking.experiment=refit-test", "train.threads=1"]
    held = train(compose_config([*args, "train.refit=false", "tracking.register=false"]))
    refit = train(compose_config([*args, "train.refit=true", "tracking.register=false"]))
    # Same seed, same held-out fit: the metrics are the held-out fit's.
    assert refit.metrics["test_macro_f1"] == pytest.approx(held.metrics["test_macro_f1"])
    loaded = bundle.load(str(refit.bundle_path))
    record = loaded.manifest["final_fit"]
    data = load_text_dataset(compose_config(args).data)
    assert record["final_fit_examples"] == len(data.train) + len(data.val) + len(data.test)
    assert "test split (data.split_by=document)" in record["metrics_from"]
    run = MlflowClient().get_run(refit.run_id)
    assert run.data.params["final_fit_data"] == "all labelled data (train + val + test)"
    assert run.data.tags["modelyard.final_fit"] == record["final_fit_data"]
    # The bundle's graph is the refit model, not the held-out one.
    texts = [str(t) for t in data.test.texts]
    a = Predictor(bundle.load(str(held.bundle_path))).predict_texts(texts).probabilities
    b = Predictor(loaded).predict_texts(texts).probabilities
    assert not np.allclose(a, b)

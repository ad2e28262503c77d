"""A training run's dataset inputs: three splits with the fingerprint's digest, logged
as the kind says (image arrays with label targets; a text table with label names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from modelyard import tracking
from modelyard.data.dataset import LabelledDataset, SourceData
from modelyard.data.split import make_splits
from modelyard.data.text import TextSource, as_text_array, make_text_splits
from modelyard.modality import modality_for
from modelyard.train.tracking_inputs import DIGEST_LENGTH, log_dataset_inputs


def _logged(dataset: LabelledDataset[Any], kind: str) -> list[dict[str, Any]]:
    tracking.configure()  # the test's own MODELYARD_HOME (the home fixture)
    with mlflow.start_run() as run:
        log_dataset_inputs(dataset, modality_for(kind))
    found = mlflow.get_run(run.info.run_id)
    assert found.data.tags["modelyard.dataset_fingerprint"] == dataset.fingerprint
    inputs = found.inputs.dataset_inputs
    assert sorted(i.tags[0].value for i in inputs) == ["testing", "training", "validation"]
    assert {i.dataset.digest for i in inputs} == {dataset.fingerprint[:DIGEST_LENGTH]}
    return [json.loads(i.dataset.schema) for i in inputs]


def test_image_and_text_splits_are_logged_in_their_own_form(home: Path, tmp_path: Path) -> None:
    labels = np.repeat(np.arange(2), 20)
    images = np.zeros((40, 2, 2, 1), np.uint8)
    images[:, 0, 0, 0] = np.arange(40)
    source = SourceData("toy", str(tmp_path), images, labels, ("a", "b"))
    for schema in _logged(make_splits(source, 0.2, 0.2, 0), "image"):
        assert set(schema["mlflow_tensorspec"]) == {"features", "targets"}

    texts = as_text_array([f"sentence {i}" for i in range(40)])
    groups = np.array(["f.txt"] * 40, dtype=object)
    text_source = TextSource("toy", str(tmp_path), texts, labels, ("da", "sv"), groups)
    for schema in _logged(make_text_splits(text_source, 0.2, 0.2, 0), "text"):
        columns = {c["name"]: c["type"] for c in schema["mlflow_colspec"]}
        assert columns == {"text": "string", "label": "string", "source": "string"}


def test_a_dataset_another_process_inserted_at_the_same_moment_is_linked(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two tune workers logging one dataset at once (CI saw it on PostgreSQL): the
    second's insert fails on the dataset's key, and the run still gets its inputs."""
    monkeypatch.setattr(tracking, "CONCURRENT_WRITE_PAUSES_S", (0.0, 0.0, 0.0))
    real = mlflow.log_input
    refused: list[str] = []

    def racing(dataset: Any, context: str | None = None) -> None:
        if context not in refused:  # the other process won this split's insert
            refused.append(context or "")
            raise MlflowException(
                "(psycopg.errors.UniqueViolation) duplicate key value violates unique "
                'constraint "dataset_pk"'
            )
        real(dataset, context=context)

    monkeypatch.setattr(mlflow, "log_input", racing)
    source = SourceData(
        "toy",
        str(tmp_path),
        np.zeros((40, 2, 2, 1), np.uint8),
        np.repeat(np.arange(2), 20),
        ("a", "b"),
    )
    _logged(make_splits(source, 0.2, 0.2, 0), "image")  # all three splits linked
    assert sorted(refused) == ["testing", "training", "validation"]

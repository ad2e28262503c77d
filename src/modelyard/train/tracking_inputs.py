"""Log a dataset's splits as MLflow dataset inputs, with the content fingerprint."""

from __future__ import annotations

from functools import partial
from typing import Any

import mlflow
from mlflow.data.numpy_dataset import from_numpy
from mlflow.data.pandas_dataset import from_pandas

from modelyard.data.dataset import LabelledDataset
from modelyard.modality import Modality
from modelyard.tracking import write_racing

# MLflow keeps at most 36 characters of a dataset digest.
DIGEST_LENGTH = 32


def log_dataset_inputs(dataset: LabelledDataset[Any], kind: Modality[Any]) -> None:
    """One input per split (training/validation/testing), all with the same digest;
    ``kind`` says what a split looks like logged (an array, or a table).

    Two processes training on one dataset at once against one tracking store (``tune``
    workers sharing PostgreSQL) both find no row for the dataset and both insert it;
    the second insert fails on the dataset's key, and its retry finds the row the other
    wrote and links this run to it (:func:`~modelyard.tracking.write_racing`)."""
    mlflow.set_tag("modelyard.dataset_fingerprint", dataset.fingerprint)
    for split_name, context in (("train", "training"), ("val", "validation"), ("test", "testing")):
        tracked = kind.tracked_split(dataset.split(split_name), dataset.class_names)
        name = f"{dataset.name}-{split_name}"
        digest = dataset.fingerprint[:DIGEST_LENGTH]
        if isinstance(tracked.features, dict):  # named columns: a table
            import pandas as pd  # MLflow's own dependency

            frame = pd.DataFrame(tracked.features)
            table = from_pandas(frame, source=dataset.uri, name=name, digest=digest)
            write_racing(partial(mlflow.log_input, table, context=context))
            continue
        array = from_numpy(
            tracked.features, targets=tracked.targets, source=dataset.uri, name=name, digest=digest
        )
        write_racing(partial(mlflow.log_input, array, context=context))

"""Log a dataset's splits as MLflow dataset inputs, with the content fingerprint."""

from __future__ import annotations

import mlflow
from mlflow.data.numpy_dataset import from_numpy
from mlflow.data.pandas_dataset import from_pandas

from modelyard.data.dataset import Dataset
from modelyard.data.text import TextDataset, TextSplit

# MLflow keeps at most 36 characters of a dataset digest.
DIGEST_LENGTH = 32


def log_dataset_inputs(dataset: Dataset | TextDataset) -> None:
    """One input per split (training/validation/testing), all with the same digest."""
    mlflow.set_tag("modelyard.dataset_fingerprint", dataset.fingerprint)
    for split_name, context in (("train", "training"), ("val", "validation"), ("test", "testing")):
        split = dataset.split(split_name)
        if isinstance(split, TextSplit):
            import pandas as pd  # MLflow's own dependency

            frame = pd.DataFrame(
                {
                    "text": split.texts,
                    "label": [dataset.class_names[i] for i in split.labels],
                    "source": split.groups,
                }
            )
            mlflow.log_input(
                from_pandas(
                    frame,
                    source=dataset.uri,
                    name=f"{dataset.name}-{split_name}",
                    digest=dataset.fingerprint[:DIGEST_LENGTH],
                ),
                context=context,
            )
            continue
        logged = from_numpy(
            split.images,
            targets=split.labels,
            source=dataset.uri,
            name=f"{dataset.name}-{split_name}",
            digest=dataset.fingerprint[:DIGEST_LENGTH],
        )
        mlflow.log_input(logged, context=context)

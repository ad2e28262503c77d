"""The bundle as an MLflow pyfunc model, so MLflow's own API can load and score it.

``mlflow.pyfunc.load_model("models:/mnist5k-cnn@candidate").predict(images)`` takes
uint8 images (N, H, W, C) and returns class probabilities (N, K); a text model takes
a 1-d numpy array of strings (its logged signature), or a one-column DataFrame (the
bundle's :class:`~modelyard.modality.Modality` reads what it was given).

The model is logged "from code" (:mod:`modelyard.mlflow_pyfunc_code`), not as a
pickled object, so loading it runs no unpickling; modelyard's own
:func:`modelyard.bundle.load` reads only the JSON + ONNX inside.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
from mlflow.pyfunc.model import PythonModel

CODE_FILE = Path(__file__).with_name("mlflow_pyfunc_code.py")


class BundlePyfunc(PythonModel):
    """Scores uint8 images (N, H, W, C), or texts, through the bundle's Predictor."""

    def load_context(self, context: Any) -> None:
        from modelyard.bundle import read_bundle
        from modelyard.predictor import Predictor

        self.predictor = Predictor(read_bundle(Path(context.artifacts["bundle"])))

    # ``np.ndarray`` is a hint MLflow accepts without coercing the input.
    def predict(
        self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        kind = self.predictor.bundle.modality
        return kind.predict(self.predictor, kind.pyfunc_examples(model_input)).probabilities


def log_bundle_model(
    bundle_dir: Path, example_images: np.ndarray, probabilities: np.ndarray
) -> str:
    """Log the bundle folder as a pyfunc model in the active run; return its model URI."""
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow nags about type hints and examples
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(CODE_FILE),
            artifacts={"bundle": str(bundle_dir)},
            signature=infer_signature(example_images, probabilities),
            pip_requirements=["modelyard", "onnxruntime", "numpy", "pillow"],
        )
    return str(info.model_uri)

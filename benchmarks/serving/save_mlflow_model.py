"""Save model.onnx as an MLflow model folder (run with the mlflow peer's venv)."""

import shutil
import sys

import mlflow.onnx
import onnx

src, dst = sys.argv[1], sys.argv[2]
shutil.rmtree(dst, ignore_errors=True)
mlflow.onnx.save_model(onnx.load(src), dst)
print("saved", dst)

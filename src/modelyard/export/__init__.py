"""Export trained models to portable formats (ONNX now; Triton's repository later)."""

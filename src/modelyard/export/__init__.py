"""Export trained models to portable formats: ONNX (parity checked), INT8, the
cost report, and Triton's model repository.

Owns: ONNX export and parity, quantization and its comparison, cost reports, Triton
repositories.

May import: ``bundle``, ``config``, ``manifest``, ``predictor``, ``scoring``; the serving path never
imports this package.
"""

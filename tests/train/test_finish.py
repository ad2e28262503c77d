"""What finish() leaves in a trained bundle: here, the cost report (issue 17)."""

from __future__ import annotations

import onnx
import pytest


def test_a_trained_bundle_carries_its_cost_report(trained, use_session_home) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    from modelyard import bundle
    from modelyard.export.cost import count_macs

    loaded = bundle.load(str(trained.bundle_path))
    cost = loaded.manifest["cost"]
    # Counted again from the bundled graph: the record describes what is served.
    again = count_macs(onnx.load(str(loaded.onnx_path)), cost["input_shape"])
    assert cost["macs_per_example"] == again.macs > 0
    assert set(cost["macs_by_op"]) == {"Conv", "Gemm"}
    assert cost["input_shape"] == [1, *loaded.preprocessing.shape]
    assert cost["size_bytes"] == loaded.onnx_path.stat().st_size
    assert cost["latency_ms_per_example_batch32"] > 0 and cost["latency_ms_batch1"] > 0
    run = MlflowClient().get_run(trained.run_id).data
    assert run.metrics["cost_macs_per_example"] == cost["macs_per_example"]
    assert run.metrics["cost_parameters"] == cost["parameters"]
    assert run.params["cost_threads"] == "1"


@pytest.mark.slow
def test_a_trained_text_bundle_counts_its_embedding_bag(trained_text, use_session_home) -> None:  # type: ignore[no-untyped-def]
    from modelyard import bundle

    loaded = bundle.load(str(trained_text.bundle_path))
    cost = loaded.manifest["cost"]
    width = cost["input_shape"][1]  # the padded n-gram width the graph ran at
    dim = cost["gathered_values_per_example"] // width
    assert dim > 0 and cost["gathered_values_per_example"] == width * dim
    # The bag's adds: every gathered value summed, plus the count of real n-grams.
    assert cost["macs_by_op"]["ReduceSum"] == width * dim + width
    assert cost["macs_by_op"]["Gemm"] > 0 and set(cost["macs_by_op"]) == {"ReduceSum", "Gemm"}

"""The tabular kind: one module (``modelyard.modality.tabular``) plus its registration,
served by ``modelyard serve`` through /v1 and v2 on a tiny ONNX graph built here."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from starlette.testclient import TestClient
from tests.helpers import Server

from modelyard.bundle import INPUT_NAME, read_bundle, write_bundle
from modelyard.config.schema import DataConfig
from modelyard.modality import kinds, modality_for
from modelyard.modality.tabular import TabularSpec
from modelyard.serve.app import create_app
from modelyard.serve.codecs import v2
from modelyard.serve.errors import ClientError
from modelyard.serve.settings import settings_from

FEATURES = 4
LABELS = ("low", "mid", "high")


def _graph(path: Path) -> Path:
    """input (N, 4) -> embedding = relu(x W1) (N, 6) -> logits (N, 3), probabilities."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(FEATURES, 6)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(6, len(LABELS))).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(np.array([0.1, -0.2, 0.3], np.float32), "b2")
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "w1"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["embedding"]),
        helper.make_node("MatMul", ["embedding", "w2"], ["scores"]),
        helper.make_node("Add", ["scores", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tabular-toy",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", FEATURES])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)]),
            helper.make_tensor_value_info(
                "probabilities", TensorProto.FLOAT, ["batch", len(LABELS)]
            ),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 6]),
        ],
        initializer=[w1, w2, b2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _run(onnx_path: Path, rows: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {INPUT_NAME: rows}), strict=True))


@pytest.fixture
def tabular_bundle(tmp_path: Path) -> Path:
    onnx_path = _graph(tmp_path / "model.onnx")
    reference = np.random.default_rng(1).normal(size=(64, FEATURES)).astype(np.float32)
    out = _run(onnx_path, reference)
    modality = modality_for("tabular")
    profile = modality.reference_profile(reference, out["probabilities"], out["embedding"], LABELS)
    folder = tmp_path / "bundle"
    write_bundle(
        folder,
        name="toy-tabular",
        task="toy",
        labels=LABELS,
        preprocessing=TabularSpec(FEATURES),
        onnx_file=onnx_path,
        reference_profile=profile,
        metrics={},
    )
    return folder


ROWS = np.array([[0.5, -1.0, 2.0, 0.0], [1.5, 0.25, -0.5, 3.0]], np.float32)


def test_tabular_is_registered_and_round_trips_its_bundle(tabular_bundle: Path) -> None:
    assert "tabular" in kinds()
    loaded = read_bundle(tabular_bundle)
    assert loaded.kind == "tabular"
    assert loaded.preprocessing == TabularSpec(FEATURES)
    assert loaded.modality is modality_for("tabular")
    assert loaded.reference_profile["kind"] == "tabular"
    assert set(loaded.reference_profile["features"]) == {"mean", "std", "min", "max"}


def test_modelyard_serve_answers_tabular_v1_and_v2(
    tabular_bundle: Path, home: Path, tmp_path: Path
) -> None:
    expected = _run(tabular_bundle / "model.onnx", ROWS)["probabilities"]
    home.mkdir()
    server = Server(str(tabular_bundle), "poll_interval_s=0")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            metadata = client.get("/v2/models/toy-tabular").json()
            assert metadata["inputs"] == [
                {"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, FEATURES]}
            ]
            assert metadata["parameters"]["kind"] == "tabular"
            assert metadata["parameters"]["labels"] == list(LABELS)

            v1 = client.post(
                "/v1/models/toy-tabular:predict", json={"instances": ROWS.tolist()}
            ).json()
            got = np.array(
                [[p["probabilities"][label] for label in LABELS] for p in v1["predictions"]]
            )
            assert np.allclose(got, expected, atol=1e-6)
            assert [p["label"] for p in v1["predictions"]] == [
                LABELS[i] for i in expected.argmax(axis=1)
            ]

            for binary in (False, True):
                body, headers = v2.encode_request({INPUT_NAME: ROWS}, binary=binary)
                response = client.post(
                    "/v2/models/toy-tabular/infer", content=body, headers=headers
                )
                assert response.status_code == 200, response.text
                length = response.headers.get(v2.HEADER_LENGTH)
                outputs = v2.decode_response(response.content, int(length) if length else None)
                assert np.allclose(outputs["probabilities"], expected, atol=1e-6)

            wrong = client.post("/v1/models/toy-tabular:predict", json={"instances": [[1.0, 2.0]]})
            assert wrong.status_code == 400
            assert "expected [N, 4]" in wrong.json()["error"]
            body, headers = v2.encode_request({INPUT_NAME: ROWS.astype(np.float64)})
            wrong = client.post("/v2/models/toy-tabular/infer", content=body, headers=headers)
            assert wrong.status_code == 400 and "must be FP32" in wrong.json()["error"]
    finally:
        assert server.stop() == 0


def test_tabular_predictions_are_logged_with_row_summaries(
    tabular_bundle: Path, home: Path
) -> None:
    from modelyard.monitor.logstore import create_log_engine, read_window

    home.mkdir()
    log_url = f"sqlite:///{home}/log.db"
    settings = settings_from(
        [f"prediction_log_url={log_url}", "log_predictions=true"],
        model=str(tabular_bundle),
        poll_interval_s=0,
    )
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/models/toy-tabular:predict", json={"instances": ROWS.tolist()})
        assert response.status_code == 200
    window = read_window(create_log_engine(log_url), "toy-tabular", last=10)
    assert len(window) == 2
    assert np.allclose(window.summaries["max"], ROWS.max(axis=1))
    assert np.allclose(window.summaries["mean"], ROWS.mean(axis=1))


def test_tabular_requests_are_checked() -> None:
    modality = modality_for("tabular")
    spec = TabularSpec(FEATURES)
    with pytest.raises(ClientError, match="NaN or Inf"):
        modality.decode_v1(b'{"instances": [[1, 2, 3, 1e39]]}', "", spec, 8, "m")
    with pytest.raises(ClientError, match="list of numbers"):
        modality.decode_v1(b'{"instances": [[1, 2, 3, "x"]]}', "", spec, 8, "m")
    with pytest.raises(ClientError) as too_many:
        modality.decode_v1(b'{"instances": [[1, 2, 3, 4], [1, 2, 3, 4]]}', "", spec, 1, "m")
    assert too_many.value.status == 413
    with pytest.raises(ClientError) as media:
        modality.decode_v1(b"{}", "text/plain", spec, 8, "m")
    assert media.value.status == 415
    batch = modality.decode_tensor("input", ROWS, spec, 8, "m")
    assert batch.model_input is ROWS and len(batch) == 2


def test_tabular_dataset_loads_and_splits_a_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = ["a,b,label"]
    for i in range(60):
        lines.append(f"{rng.normal():.4f},{rng.normal():.4f},{'yes' if i % 2 else 'no'}")
    table = tmp_path / "rows.csv"
    table.write_text("\n".join(lines) + "\n")
    modality = modality_for("tabular")
    data = DataConfig(source="table", path=str(table), val_fraction=0.2, test_fraction=0.2)
    dataset = modality.load_dataset(data)
    assert dataset.class_names == ("no", "yes")
    sizes = [len(dataset.split(s).labels) for s in ("train", "val", "test")]
    assert sum(sizes) == 60 and min(sizes) >= 10
    test = modality.split_examples(dataset, "test")
    assert test.examples.dtype == np.float32 and test.examples.shape[1] == 2
    again = modality.load_dataset(data)
    assert again.fingerprint == dataset.fingerprint
    assert np.array_equal(again.test.rows, dataset.test.rows)


def test_batch_prediction_says_it_has_no_tabular_reader(
    tabular_bundle: Path, tmp_path: Path
) -> None:
    from modelyard.batch_predict import predict_to_csv
    from modelyard.errors import UsageError

    with pytest.raises(UsageError, match="toy-tabular is a tabular model: serve it"):
        predict_to_csv(str(tabular_bundle), [tmp_path], tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_another_kinds_predictor_method_names_the_one_that_fits(tabular_bundle: Path) -> None:
    from modelyard.errors import DataError
    from modelyard.predictor import Predictor

    predictor = Predictor(read_bundle(tabular_bundle))
    for wrong in (
        lambda: predictor.predict_images(np.zeros((1, 8, 8, 1), np.uint8)),
        lambda: predictor.predict_files(["seven.png"]),
        lambda: predictor.predict_texts(["hej"]),
    ):
        with pytest.raises(DataError, match="toy-tabular is a tabular model; use predict_inputs"):
            wrong()
    expected = _run(tabular_bundle / "model.onnx", ROWS)["probabilities"]
    assert np.allclose(predictor.predict_inputs(ROWS).probabilities, expected)


def test_int8_and_triton_exports_refuse_a_kind_without_them(
    tabular_bundle: Path, tmp_path: Path
) -> None:
    from modelyard.errors import UsageError
    from modelyard.export.quantize import quantize_model
    from modelyard.export.triton import write_triton_repository

    with pytest.raises(UsageError, match="toy-tabular is a tabular model; INT8 quantization is"):
        quantize_model(str(tabular_bundle), tmp_path / "int8")
    with pytest.raises(UsageError, match="toy-tabular is a tabular model: modelyard writes no"):
        write_triton_repository(read_bundle(tabular_bundle), tmp_path / "triton")
    assert not (tmp_path / "int8").exists() and not (tmp_path / "triton").exists()

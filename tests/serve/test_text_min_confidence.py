"""The served confidence threshold of a text model: the ``min_confidence`` /
``low_confidence_label`` serve settings (over the bundle's), a request's own
threshold (/v1 ``"min_confidence"``, v2 ``parameters.min_confidence``), and the
one-line refusals of bad values, through the real app with a tiny trained bundle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient
from tests.helpers import logged_rows, run_cli
from tests.text_fixtures import SENTENCES

from modelyard import bundle
from modelyard.errors import EXIT_USAGE, ConfigError
from modelyard.features.image import ImageSpec
from modelyard.features.text import TextSpec
from modelyard.modality.text import served_spec
from modelyard.predictor import Predictor
from modelyard.serve.app import create_app
from modelyard.serve.codecs import v2
from modelyard.serve.settings import settings_from

MODEL = "langid-nordic-fasttext"
URI = f"{MODEL}@candidate"
PREDICT = f"/v1/models/{MODEL}:predict"
INFER = f"/v2/models/{MODEL}/infer"
# Short and long texts of every class: the tiny model is unsure of some of them.
TEXTS = [SENTENCES[label][i] for label in SENTENCES for i in (0, 1, 5)] + ["ja", "ok", "x y"]


def _offline() -> tuple[np.ndarray, tuple[str, ...]]:
    loaded = bundle.load(URI)
    return Predictor(loaded).predict_texts(TEXTS).probabilities, loaded.labels


def _middle_threshold(probabilities: np.ndarray) -> float:
    """A threshold some answers fall below and some reach (rounded away from both)."""
    confidence = np.sort(probabilities.max(axis=1))
    assert confidence[0] < confidence[-1], "the fixture model must be unsure of something"
    middle = len(confidence) // 2
    return float((confidence[middle - 1] + confidence[middle]) / 2)


def _expected(probabilities: np.ndarray, labels: tuple[str, ...], threshold: float, low: str):
    return [labels[int(row.argmax())] if row.max() >= threshold else low for row in probabilities]


@pytest.fixture
def served(trained_text, use_session_home) -> Iterator[tuple[TestClient, float]]:  # type: ignore[no-untyped-def]
    probabilities, _ = _offline()
    threshold = _middle_threshold(probabilities)
    settings = settings_from(
        [f"min_confidence={threshold}", "low_confidence_label=other"],
        model=URI,
        poll_interval_s=0,
        max_instances=64,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, threshold


def test_the_serve_setting_relabels_low_confidence_answers_and_keeps_the_confidence(
    served: tuple[TestClient, float],
) -> None:
    client, threshold = served
    probabilities, labels = _offline()
    body = client.post(PREDICT, json={"texts": TEXTS}).json()
    answers = [p["label"] for p in body["predictions"]]
    assert answers == _expected(probabilities, labels, threshold, "other")
    assert "other" in answers and any(
        row.max() < threshold and labels[int(row.argmax())] != "other" for row in probabilities
    ), "some non-other answer must have been relabelled"
    np.testing.assert_allclose(
        [p["confidence"] for p in body["predictions"]], probabilities.max(axis=1), atol=1e-6
    )


def test_a_request_threshold_overrides_the_served_one(served: tuple[TestClient, float]) -> None:
    client, _ = served
    probabilities, labels = _offline()
    none = client.post(PREDICT, json={"texts": TEXTS, "min_confidence": 0}).json()
    assert [p["label"] for p in none["predictions"]] == [
        labels[int(row.argmax())] for row in probabilities
    ]
    strict = client.post(PREDICT, json={"text": TEXTS[0], "min_confidence": 0.999999}).json()
    expected = _expected(probabilities[:1], labels, 0.999999, "other")
    assert [p["label"] for p in strict["predictions"]] == expected


def test_v2_parameters_min_confidence_adds_the_served_labels(
    served: tuple[TestClient, float],
) -> None:
    client, threshold = served
    probabilities, labels = _offline()
    texts = np.empty(len(TEXTS), dtype=object)
    texts[:] = TEXTS
    body, _ = v2.encode_request({"input": texts})
    payload = json.loads(body)
    plain = client.post(INFER, json=payload).json()
    assert "label" not in [o["name"] for o in plain["outputs"]]
    lower = threshold / 2
    payload["parameters"] = {"min_confidence": lower}
    answer = client.post(INFER, json=payload)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    assert outputs["label"]["datatype"] == "BYTES"
    assert outputs["label"]["data"] == _expected(probabilities, labels, lower, "other")
    payload["outputs"] = [{"name": "label"}]
    only = client.post(INFER, json=payload).json()
    assert [o["name"] for o in only["outputs"]] == ["label"]


@pytest.mark.parametrize("value", [1, 1.5, -0.1, "high", True, [0.5]])
def test_a_bad_request_threshold_is_a_client_error_naming_the_range(
    served: tuple[TestClient, float], value: object
) -> None:
    client, _ = served
    v1 = client.post(PREDICT, json={"text": TEXTS[0], "min_confidence": value})
    assert v1.status_code == 400 and "min_confidence" in v1.text and "[0, 1)" in v1.text
    texts = np.empty(1, dtype=object)
    texts[:] = TEXTS[:1]
    body, _ = v2.encode_request({"input": texts})
    payload = json.loads(body)
    payload["parameters"] = {"min_confidence": value}
    answer = client.post(INFER, json=payload)
    assert answer.status_code in (400, 422), answer.text
    assert "parameters.min_confidence" in answer.text and "[0, 1)" in answer.text


@pytest.mark.parametrize("value", ["1.0", "-0.2"])
def test_a_serve_setting_out_of_range_is_refused_in_one_line(value: str) -> None:
    with pytest.raises(ConfigError, match=r"min_confidence=.*must be in \[0, 1\)") as caught:
        settings_from([f"min_confidence={value}"], model=URI)
    assert "\n" not in str(caught.value)


def test_the_settings_refuse_a_label_the_model_lacks_and_a_model_that_is_not_text() -> None:
    labels = ("da", "sv", "other")
    spec = TextSpec(min_confidence=0.2)
    assert served_spec(spec, "text", labels, "m", None, "") is spec
    kept = served_spec(spec, "text", labels, "m", None, "other")
    assert (kept.min_confidence, kept.low_confidence_label) == (0.2, "other")
    assert served_spec(spec, "text", labels, "m", 0.7, "").min_confidence == 0.7
    assert served_spec(spec, "text", labels, "m", 0.7, "unknown").low_confidence_label == "unknown"
    with pytest.raises(ConfigError, match="no such class; use unknown or one of da, sv, other"):
        served_spec(spec, "text", labels, "m", 0.7, "nn")
    with pytest.raises(ConfigError, match=r"only text models .* digits is an image model"):
        served_spec(ImageSpec(8, 8, 1, 0.0, 1.0), "image", ("0", "1"), "digits", 0.7, "")


@pytest.mark.slow
def test_modelyard_serve_refuses_an_unknown_low_confidence_label_in_one_line(
    trained_text,  # type: ignore[no-untyped-def]
) -> None:
    folder = Path(trained_text.bundle_path)
    result = run_cli(
        "serve", str(folder), "min_confidence=0.5", "low_confidence_label=maybe", timeout=90
    )
    assert result.returncode == EXIT_USAGE, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "low_confidence_label=maybe" in lines[0], result.stderr[-2000:]
    assert "use unknown or one of da, sv, nb, nn, other" in lines[0]


def test_a_shadow_row_is_labelled_under_the_main_answers_threshold(
    trained_text, use_session_home, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The shadow (here the same version under its alias) is labelled with the main
    answer's threshold, the request's own included: both rows of a request agree, so
    ``monitor compare`` compares what each version would have served."""
    probabilities, labels = _offline()
    threshold = _middle_threshold(probabilities)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    settings = settings_from(
        [f"min_confidence={threshold}", "low_confidence_label=unknown", "shadow=candidate"],
        model=URI,
        poll_interval_s=0,
        max_instances=64,
        prediction_log_url=url,
    )
    lower = threshold / 2
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for request_id, body in (
            ("served", {"texts": TEXTS}),
            ("own", {"texts": TEXTS, "min_confidence": lower}),
        ):
            answer = client.post(PREDICT, json=body, headers={"x-request-id": request_id})
            assert answer.status_code == 200, answer.text
    # Leaving the client stopped the server: the shadow finished, the log was written.
    rows = logged_rows(url, "request_id, role, label")
    by_role: dict[tuple[str, str], list[str]] = {}
    for request_id, role, label in rows:
        by_role.setdefault((request_id, role), []).append(label)
    for request_id, cut in (("served", threshold), ("own", lower)):
        expected = _expected(probabilities, labels, cut, "unknown")
        assert by_role[(request_id, "main")] == expected, request_id
        assert by_role[(request_id, "shadow")] == expected, request_id
    assert "unknown" in by_role[("served", "shadow")]

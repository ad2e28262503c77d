"""A model cheap enough computes its batches on the event loop; answers do not change."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from starlette.testclient import TestClient

from modelyard import bundle
from modelyard.features.image import to_model_input
from modelyard.serve.codecs import v2

pytestmark = pytest.mark.slow
INFER = "/v2/models/digits-cnn/infer"


def _probabilities(client: TestClient, images: np.ndarray) -> np.ndarray:
    spec = bundle.load("digits-cnn@candidate").preprocessing
    body, headers = v2.encode_request({"input": to_model_input(images, spec)})
    response = client.post(INFER, content=body, headers=headers)
    assert response.status_code == 200, response.text
    return v2.decode_response(response.content)["probabilities"]


def test_a_cheap_model_batches_on_the_loop_with_the_same_answers(
    make_client: Callable[..., TestClient], digits_test_images: np.ndarray
) -> None:
    on_loop = make_client("inline_batch_max_ms=1000")
    on_thread = make_client("inline_batch_max_ms=0")
    two_workers = make_client("inline_batch_max_ms=1000", "batch_workers=2")
    assert on_loop.app.state.runtime.current.batcher.inline_batches  # type: ignore[attr-defined]
    assert not on_thread.app.state.runtime.current.batcher.inline_batches  # type: ignore[attr-defined]
    # two batches at once need the threads: the loop could compute only one
    assert not two_workers.app.state.runtime.current.batcher.inline_batches  # type: ignore[attr-defined]
    np.testing.assert_allclose(
        _probabilities(on_loop, digits_test_images),
        _probabilities(on_thread, digits_test_images),
        atol=1e-6,
    )


def test_a_negative_inline_batch_limit_is_refused(make_client: Callable[..., TestClient]) -> None:
    with pytest.raises(Exception, match="inline_batch_max_ms"):
        make_client("inline_batch_max_ms=-1")

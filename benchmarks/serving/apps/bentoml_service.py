"""BentoML service with adaptive batching; the v2 body's ``inputs`` list is the batch."""

from __future__ import annotations

import os
import sys
from typing import Any

import bentoml
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import decode_v2, encode_v2, make_session


@bentoml.service(workers=1, traffic={"timeout": 30, "max_concurrency": 256})
class Mnist:
    def __init__(self) -> None:
        self.session = make_session()
        self.names = [o.name for o in self.session.get_outputs()]

    @bentoml.api(
        route="/v2/models/mnist/infer", batchable=True, max_batch_size=32, max_latency_ms=1000
    )
    def infer(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        x = np.concatenate([decode_v2({"inputs": [spec]}) for spec in inputs])
        outputs = self.session.run(None, {"input": x})
        return [encode_v2(self.names, [o[i : i + 1] for o in outputs]) for i in range(len(x))]

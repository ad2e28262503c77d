"""MLServer custom runtime: ONNX Runtime behind MLServer's adaptive batching."""

from __future__ import annotations

import os
import sys

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

sys.path.insert(0, os.path.dirname(__file__))
from common import make_session


class OnnxModel(MLModel):
    async def load(self) -> bool:
        self._session = make_session()
        self._names = [o.name for o in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        outputs = self._session.run(None, {"input": x})
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output(n, a) for n, a in zip(self._names, outputs, strict=False)
            ],
        )

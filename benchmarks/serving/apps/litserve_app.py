"""LitServe with its batching (max_batch_size 32, batch_timeout 2 ms as modelyard)."""

from __future__ import annotations

import os
import sys

import litserve as ls
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import decode_v2, encode_v2, make_session


class MnistAPI(ls.LitAPI):
    def setup(self, device):  # type: ignore[no-untyped-def]
        self.session = make_session()
        self.names = [o.name for o in self.session.get_outputs()]

    def decode_request(self, request):  # type: ignore[no-untyped-def]
        return decode_v2(request)[0]

    def batch(self, inputs):  # type: ignore[no-untyped-def]
        return np.stack(inputs)

    def predict(self, x):  # type: ignore[no-untyped-def]
        return self.session.run(None, {"input": x})

    def unbatch(self, output):  # type: ignore[no-untyped-def]
        return [[o[i : i + 1] for o in output] for i in range(len(output[0]))]

    def encode_response(self, output):  # type: ignore[no-untyped-def]
        return encode_v2(self.names, output)


if __name__ == "__main__":
    import inspect

    kwargs = {"max_batch_size": 32, "batch_timeout": 0.002}
    server_kwargs = {"accelerator": "cpu", "workers_per_device": 1, "timeout": 30}
    if "api_path" in inspect.signature(ls.LitAPI.__init__).parameters:
        api = MnistAPI(api_path="/v2/models/mnist/infer", **kwargs)
    else:
        api = MnistAPI()
        server_kwargs.update(kwargs, api_path="/v2/models/mnist/infer")
    server = ls.LitServer(api, **server_kwargs)
    server.run(
        port=int(sys.argv[1]),
        host="127.0.0.1",
        num_api_servers=1,
        log_level="warning",
        generate_client_file=False,
    )

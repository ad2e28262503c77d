"""Ray Serve: one replica, @serve.batch (max_batch_size 32, batch_wait_timeout_s 2 ms)."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

sys.path.insert(0, os.path.dirname(__file__))
from common import decode_v2, dumps, encode_v2, make_session


@serve.deployment(num_replicas=1, max_ongoing_requests=128, ray_actor_options={"num_cpus": 1})
class Mnist:
    def __init__(self) -> None:
        self.session = make_session()
        self.names = [o.name for o in self.session.get_outputs()]

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def run(self, xs: list[np.ndarray]) -> list[bytes]:
        outputs = self.session.run(None, {"input": np.concatenate(xs)})
        return [
            dumps(encode_v2(self.names, [o[i : i + 1] for o in outputs])) for i in range(len(xs))
        ]

    async def __call__(self, request: Request) -> Response:
        body = await self.run(decode_v2(await request.json()))
        return Response(body, media_type="application/json")


if __name__ == "__main__":
    port = int(sys.argv[1])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(Mnist.bind(), route_prefix="/v2/models/mnist/infer", name="mnist")
    print("ray serve ready", flush=True)
    while True:
        time.sleep(3600)

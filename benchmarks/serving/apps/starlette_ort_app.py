"""Plain Starlette + ONNX Runtime, no batching: one session.run per request, in the loop."""

from __future__ import annotations

import json
import os
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, os.path.dirname(__file__))
from common import decode_v2, dumps, encode_v2, make_session

session = make_session()
names = [o.name for o in session.get_outputs()]


async def infer(request: Request) -> Response:
    x = decode_v2(json.loads(await request.body()))
    outputs = session.run(None, {"input": x})
    return Response(dumps(encode_v2(names, outputs)), media_type="application/json")


app = Starlette(routes=[Route("/v2/models/mnist/infer", infer, methods=["POST"])])

if __name__ == "__main__":
    workers = int(os.environ.get("PEER_WORKERS", "1"))  # processes (uvicorn --workers)
    uvicorn.run(
        "starlette_ort_app:app" if workers > 1 else app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=workers,
        log_level="warning",
        access_log=False,
    )

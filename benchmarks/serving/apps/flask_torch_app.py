"""Flask + torch: one forward pass per request (threaded werkzeug server, no batching).

The model is the same network as model.onnx, rebuilt from the training checkpoint and
saved as TorchScript by export_torchscript.py (run in the project venv).
"""

from __future__ import annotations

import os
import sys

import torch
from flask import Flask, Response, request

sys.path.insert(0, os.path.dirname(__file__))
from common import decode_v2, dumps, encode_v2

model = torch.jit.load(os.environ["PEER_TORCHSCRIPT"]).eval()
names = ["logits", "probabilities", "embedding"]
app = Flask(__name__)


@app.post("/v2/models/mnist/infer")
def infer() -> Response:
    x = torch.from_numpy(decode_v2(request.get_json(force=True)))
    with torch.inference_mode():
        outputs = [t.numpy() for t in model(x)]
    return Response(dumps(encode_v2(names, outputs)), mimetype="application/json")


if __name__ == "__main__":
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)

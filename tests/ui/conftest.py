"""UI fixtures: one real model server for all UI tests, a scripted stand-in server for
answers the real one cannot give (a text model, errors), and drift report folders."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import Server

# path -> (status, JSON body); what the stand-in answers to GET and POST alike.
Routes = dict[str, tuple[int, Any]]


@pytest.fixture(scope="package")
def server(trained) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    served = Server(str(trained.bundle_path), "poll_interval_s=0")
    yield served
    served.stop()


@pytest.fixture
def stand_in() -> Iterator[Callable[[Routes], str]]:
    """Factory: an HTTP server on a free port answering fixed JSON per path."""
    servers: list[ThreadingHTTPServer] = []

    def start(routes: Routes) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                status, body = routes.get(self.path, (404, {"error": f"no route {self.path}"}))
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def text_model_routes(label: str = "de") -> Routes:
    """What a text model server answers: a BYTES input and {"text": ...} predictions."""
    labels = ["de", "en", "fr"]
    probabilities = {name: (0.8 if name == label else 0.1) for name in labels}
    return {
        "/metrics": (200, b'modelyard_model_info{model="langid",version="4"} 1.0\n'),
        "/v2/models/langid": (
            200,
            {
                "name": "langid",
                "versions": ["4"],
                "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
                "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}],
                "parameters": {"labels": labels, "task": "langid", "kind": "text"},
            },
        ),
        "/v1/models/langid:predict": (
            200,
            {
                "model_name": "langid",
                "model_version": "4",
                "request_id": "r1",
                "predictions": [
                    {"label": label, "confidence": 0.8, "probabilities": probabilities}
                ],
            },
        ),
    }


def write_report(
    home: Path, model: str, *, drift: bool, name: str = "20261124T070000Z", link: str = "symlink"
) -> Path:
    """A report folder as `modelyard monitor drift` writes it, made the latest one
    by a symlink or by latest.json (link="none": neither)."""
    import numpy as np
    from PIL import Image

    model_dir = home / "monitor" / model
    folder = model_dir / name
    folder.mkdir(parents=True)
    verdict = {
        "model": model,
        "version": "3",
        "created": "2026-11-24T07:00:00Z",
        "window": {
            "records": 500,
            "since": "2026-11-24T06:00:00Z",
            "until": "2026-11-24T07:00:00Z",
        },
        "drift": drift,
        "checks": [
            {
                "name": "ink_fraction",
                "kind": "ks",
                "statistic": 0.41,
                "p_value": 1e-9,
                "psi": 0.62,
                "drift": drift,
            },
            {
                "name": "predicted_label",
                "kind": "chi2",
                "statistic": 8.1,
                "p_value": 0.52,
                "psi": 0.03,
                "drift": False,
            },
        ],
        "plots": ["ink_fraction.png", "missing.png"],
    }
    (folder / "verdict.json").write_text(json.dumps(verdict))
    (folder / "report.html").write_text("<html><body><h1>Drift report</h1></body></html>")
    gradient = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (32, 1))
    Image.fromarray(gradient).save(folder / "ink_fraction.png")
    if link == "symlink":
        (model_dir / "latest").symlink_to(folder.name)
    elif link == "json":
        (model_dir / "latest.json").write_text(json.dumps({"path": name}))
    return folder

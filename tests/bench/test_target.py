"""Who and what ``bench`` targets: a URL without a scheme, the model the server serves
when --model is not given, and text for a text model without --text."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.helpers import Server, run_cli

from modelyard.bench import bench
from modelyard.bench.connection import Endpoint
from modelyard.bench.payloads import _names_in_metrics, resolve_model
from modelyard.errors import ModelyardError

IMAGE_METADATA = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]}
TEXT_METADATA = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}]}


class _Fake(BaseHTTPRequestHandler):
    """A modelyard-like server: v2 metadata, /metrics naming its model, and inference
    that answers 400 to a payload of the wrong kind, as the real one does."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the load engine expects
    server: _FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, document: Any, raw: bytes | None = None) -> None:
        body = raw if raw is not None else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        fake = self.server
        if self.path == "/metrics":
            lines = [f'modelyard_model_info{{model="{n}",version="1"}} {v}' for n, v in fake.info]
            return self._answer(200, None, ("\n".join(lines) + "\n").encode())
        if self.path == "/v2/models" and fake.listing is not None:
            return self._answer(200, fake.listing)
        name = self.path.removeprefix("/v2/models/")
        if self.path.startswith("/v2/models/") and name == fake.model:
            return self._answer(200, {"name": name, **fake.metadata})
        self._answer(404, {"error": f"no route GET {self.path}"})

    def do_POST(self) -> None:
        fake = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        fake.bodies.append((self.path, body))
        text_model = fake.metadata is TEXT_METADATA
        if self.path == f"/v2/models/{fake.model}/infer":
            datatype = json.loads(body)["inputs"][0]["datatype"]
            ok = (datatype == "BYTES") == text_model
        elif self.path == f"/v1/models/{fake.model}:predict":
            ok = ("text" in json.loads(body)) == text_model
        else:
            return self._answer(404, {"error": f"no route POST {self.path}"})
        self._answer(200 if ok else 400, {} if ok else {"error": "wrong kind of input"})


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model: str, metadata: dict[str, Any]):
        super().__init__(("127.0.0.1", 0), _Fake)
        self.model, self.metadata = model, metadata
        self.info: list[tuple[str, float]] = [(model, 1.0)]
        self.listing: Any = None
        self.bodies: list[tuple[str, bytes]] = []
        self.address = f"127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def fake() -> Iterator[type[_FakeServer]]:
    servers: list[_FakeServer] = []

    def make(model: str = "langid", metadata: dict[str, Any] = TEXT_METADATA) -> _FakeServer:
        server = _FakeServer(model, metadata)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in servers:
        server.shutdown()
        server.server_close()


def _bench(url: str, model: str | None, protocol: str = "v2", **kwargs: Any) -> Any:
    return bench(url, model, [2], 0.2, protocol, warmup_s=0.05, measure_ceiling=False, **kwargs)  # type: ignore[arg-type]


# -- URLs ----------------------------------------------------------------------------------


def test_a_url_without_scheme_means_http(fake: Any) -> None:
    server = fake("digits", IMAGE_METADATA)
    report = _bench(server.address, "digits")  # "127.0.0.1:PORT", as users type it
    (level,) = report.levels
    assert level.errors == 0 and level.requests > 0
    assert report.url == f"http://{server.address}"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1:8000", r"not an http\(s\) URL \(ftp:// is not spoken here\)"),
        ("grpc://127.0.0.1:8001", "grpc:// is not spoken here"),
        ("http://", "names no host"),
        ("localhost:80x", "invalid port"),
    ],
)
def test_unsupported_urls_say_what_to_pass(url: str, message: str) -> None:
    with pytest.raises(ModelyardError, match=message):
        _bench(url, "m")
    with pytest.raises(ModelyardError, match=r"e\.g\. http://127\.0\.0\.1:8000"):
        Endpoint.parse(url)


# -- which model ---------------------------------------------------------------------------


def test_the_model_defaults_to_the_one_the_server_serves(fake: Any) -> None:
    server = fake("digits", IMAGE_METADATA)
    server.info = [("old", 0.0), ("digits", 1.0)]  # a hot reload retired "old"
    report = _bench(server.address, None)
    assert report.model == "digits" and report.levels[0].errors == 0
    assert {path for path, _ in server.bodies if path.endswith("/infer")} == {
        "/v2/models/digits/infer"
    }


def test_several_or_no_models_ask_for_model(fake: Any) -> None:
    server = fake("digits", IMAGE_METADATA)
    server.listing = {"models": [{"name": "digits"}, {"name": "langid"}]}
    with pytest.raises(ModelyardError, match=r"serves 2 models \(digits, langid\); pass --model"):
        _bench(server.address, None)
    server.listing, server.info = None, []
    with pytest.raises(ModelyardError, match="does not list the models it serves; pass --model"):
        _bench(server.address, None)


def test_model_names_are_read_from_a_list_or_the_metrics() -> None:
    metrics = (
        "# HELP modelyard_model_info ...\n"
        'modelyard_model_info{model="a",version="1"} 0.0\n'
        'modelyard_model_info{model="b",version="2"} 1.0\n'
        'modelyard_model_infox{model="c"} 1.0\n'
    )
    assert _names_in_metrics(metrics) == ["b"]
    assert resolve_model("http://unused", "given", {}) == "given"  # no request made


# -- what to send --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["v2", "v1"])
def test_a_text_model_gets_text_without_text_option(fake: Any, protocol: str) -> None:
    server = fake("langid", TEXT_METADATA)
    report = _bench(server.address, None, protocol)
    (level,) = report.levels
    assert level.errors == 0 and level.requests > 0, level.error_kinds
    assert "text" in report.payload and "sample sentence (--text to choose)" in report.payload
    path, body = server.bodies[-1]
    assert path.endswith("/infer" if protocol == "v2" else ":predict")
    assert b"committee" in body


def test_text_given_is_sent_as_given(fake: Any) -> None:
    server = fake("langid", TEXT_METADATA)
    report = _bench(server.address, "langid", text="hej med dig")
    assert "sample" not in report.payload and b"hej med dig" in server.bodies[-1][1]


def test_an_image_model_still_gets_a_tensor(fake: Any) -> None:
    server = fake("digits", IMAGE_METADATA)
    report = _bench(server.address, "digits")
    assert report.payload.startswith("v2 JSON FP32 [1, 1, 8, 8]")


# -- the command ---------------------------------------------------------------------------


def test_self_test_is_short_by_default() -> None:
    result = run_cli("bench", "--self-test", "-c", "1,2", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["settings"]["duration_s"] <= 2 and data["settings"]["warmup_s"] <= 0.5
    assert all(level["requests"] > 100 for level in data["levels"])  # still measured
    explicit = run_cli(
        "bench", "--self-test", "-c", "1", "--duration", "300ms", "--warmup", "0", "--json"
    )
    assert explicit.returncode == 0, explicit.stderr
    assert json.loads(explicit.stdout)["settings"]["duration_s"] == 0.3


def test_cli_finds_the_model_and_the_scheme(fake: Any) -> None:
    server = fake("langid", TEXT_METADATA)
    result = run_cli(
        "bench", server.address, "-c", "1", "--duration", "0.2s", "--no-ceiling", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["target"]["model"] == "langid" and data["levels"][0]["errors"] == 0
    assert data["target"]["url"] == f"http://{server.address}"
    assert "model langid: the one" in result.stderr


# -- against the real text server --------------------------------------------------------


@pytest.mark.slow
def test_real_text_server_without_model_or_text(trained_text, use_session_home) -> None:  # type: ignore[no-untyped-def]
    server = Server("langid-nordic-fasttext@candidate", "poll_interval_s=0")
    try:
        for protocol in ("v2", "v1"):
            report = _bench(server.url.removeprefix("http://"), None, protocol)
            (level,) = report.levels
            assert report.model == "langid-nordic-fasttext"
            assert level.errors == 0 and level.requests > 0, level.error_kinds
    finally:
        server.stop()

"""The load generator: parsing, percentile math, HTTP framing, counting against local
servers that answer 200 and sometimes 500, and a real ``modelyard serve`` process."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.helpers import Server, free_port, run_cli

from modelyard.bench import (
    BenchReport,
    LevelResult,
    bench,
    parse_levels,
    percentile,
    run_load,
    self_test,
)
from modelyard.bench.connection import Client, Connection, Endpoint, Tally, render_request
from modelyard.bench.payloads import build_payload, image_payload, tensor_payload, text_payload
from modelyard.bench.stats import Partial, latency_summary, summarize
from modelyard.errors import ModelyardError
from modelyard.serve.codecs import v2

# -- parsing ---------------------------------------------------------------------------


def test_concurrency_levels_parse_and_reject_nonsense() -> None:
    assert parse_levels("1,8,32,64") == [1, 8, 32, 64]
    assert parse_levels("4") == [4]
    for bad in ("", "a,b", "0,4", "1,-2"):
        with pytest.raises(ModelyardError, match="concurrency levels"):
            parse_levels(bad)


# -- statistics ------------------------------------------------------------------------


def test_percentiles_are_nearest_rank_on_known_data() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100: the q-th percentile is q
    assert [percentile(values, q) for q in (50, 90, 95, 99, 100)] == [50, 90, 95, 99, 100]
    ten = [float(v) for v in range(10, 110, 10)]  # 10..100
    assert percentile(ten, 50) == 50 and percentile(ten, 95) == 100 and percentile(ten, 1) == 10
    assert percentile([7.0], 99) == 7.0
    # Ranks that are exact in decimal stay exact in floating point (99.9 * 1000 / 100).
    assert percentile([float(v) for v in range(1, 1001)], 99.9) == 999
    with pytest.raises(ValueError):
        percentile([], 50)


def test_latency_summary_is_in_milliseconds_and_none_without_data() -> None:
    summary = latency_summary([0.004, 0.001, 0.002, 0.003])
    assert summary == {
        "p50_ms": 2.0,
        "p90_ms": 4.0,
        "p95_ms": 4.0,
        "p99_ms": 4.0,
        "mean_ms": 2.5,
        "max_ms": 4.0,
    }
    assert set(latency_summary([]).values()) == {None}


def test_summarize_merges_processes_and_counts_errors_apart() -> None:
    from array import array

    first = Partial(array("d", [0.001] * 100), {"HTTP 500": 3}, 1.0)
    second = Partial(array("d", [0.003] * 50), {"HTTP 500": 1, "timeout": 2}, 0.5)
    result = summarize(8, [first, second])
    assert result.requests == 156 and result.errors == 6
    assert result.error_kinds == {"HTTP 500": 4, "timeout": 2}
    assert result.throughput == pytest.approx(100 / 1.0 + 50 / 0.5)  # each at its own rate
    assert result.p50_ms == 1.0 and result.max_ms == 3.0 and result.window_s == 1.0


# -- HTTP framing, fed byte by byte ----------------------------------------------------


class _FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    abort = close


def _connection() -> tuple[Connection, _FakeTransport, Tally]:
    tally = Tally(measuring=True)
    client = Client(Endpoint("h", 1, False, ""), b"REQUEST", tally, None)
    connection, transport = Connection(client), _FakeTransport()
    connection.connection_made(transport)  # type: ignore[arg-type]
    return connection, transport, tally


@pytest.mark.parametrize(
    ("response", "status"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 200),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 200),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX: y\r\n\r\n", 204),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
            200,
        ),
        (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nbusy!", 503),
    ],
)
def test_a_response_split_anywhere_is_framed_once(response: bytes, status: int) -> None:
    connection, transport, tally = _connection()
    for index in range(len(response)):  # the worst case: one byte per read
        connection.data_received(response[index : index + 1])
    assert connection.status == status and not connection.buffer
    assert len(tally.latencies) + sum(tally.errors.values()) == 1
    if status >= 300:
        assert tally.errors == {f"HTTP {status}": 1}
    assert transport.written == [b"REQUEST", b"REQUEST"]  # answered, so the next one went out


def test_a_garbled_response_counts_as_an_error_and_drops_the_connection() -> None:
    connection, transport, tally = _connection()
    connection.data_received(b"SMTP ready\r\n\r\n")
    assert tally.errors == {"bad response": 1} and transport.closed


def test_requests_are_rendered_once_with_exact_framing() -> None:
    endpoint = Endpoint.parse("http://example.org:8080/api/")
    request = render_request(endpoint, "/v2/models/m/infer", b"12345", {"X-Api-Key": "k"})
    head, body = request.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /api/v2/models/m/infer HTTP/1.1\r\nHost: example.org:8080")
    assert b"Content-Length: 5" in head and b"X-Api-Key: k" in head and body == b"12345"
    assert Endpoint.parse("localhost:9000") == Endpoint("localhost", 9000, False, "")
    with pytest.raises(ModelyardError, match="not an http"):
        Endpoint.parse("ftp://x")


# -- payloads --------------------------------------------------------------------------


def test_v2_payloads_decode_with_the_servers_codec() -> None:
    json_payload = tensor_payload("v2", (1, 8, 8), batch=3, input_name="input")
    decoded = v2.decode_request(json_payload.body).inputs["input"]
    assert decoded.shape == (3, 1, 8, 8) and decoded.dtype == np.float32
    binary = tensor_payload("v2", (1, 8, 8), binary=True)
    length = int(binary.headers[v2.HEADER_LENGTH])
    assert v2.decode_request(binary.body, length).inputs["input"].shape == (1, 1, 8, 8)
    assert "binary FP32 [1, 1, 8, 8]" in binary.description


def test_v1_payloads_are_pixels_files_or_text() -> None:
    pixels = json.loads(tensor_payload("v1", (1, 8, 8), batch=2).body)["instances"]
    assert np.asarray(pixels).shape == (2, 8, 8)
    rgb = json.loads(tensor_payload("v1", (3, 4, 5)).body)["instances"]
    assert np.asarray(rgb).shape == (1, 4, 5, 3)  # channels-first metadata -> H x W x C
    assert json.loads(text_payload("v1", "hallo welt").body) == {"text": "hallo welt"}
    tensor = json.loads(text_payload("v2", "hi", batch=2, input_name="t").body)["inputs"][0]
    assert tensor == {"name": "t", "shape": [2], "datatype": "BYTES", "data": ["hi", "hi"]}
    with pytest.raises(ModelyardError, match="--binary is a v2"):
        tensor_payload("v1", (1, 8, 8), binary=True)


def test_images_upload_as_multipart(tmp_path: Path) -> None:
    image = tmp_path / "seven.png"
    image.write_bytes(b"\x89PNG fake")
    payload = image_payload(image, batch=2)
    boundary = payload.headers["Content-Type"].split("boundary=")[1]
    assert payload.body.count(f"--{boundary}\r\n".encode()) == 2
    assert payload.body.count(b"\x89PNG fake") == 2 and payload.body.endswith(b"--\r\n")
    with pytest.raises(ModelyardError, match="add --protocol v1"):
        build_payload("http://x", "m", "v2", headers={}, image=image)
    with pytest.raises(ModelyardError, match="cannot read image"):
        image_payload(tmp_path / "missing.png")


# -- against tiny local servers ----------------------------------------------------------


class _TinyServer:
    """A raw asyncio HTTP server in a thread. ``mode``: how it frames answers (length,
    chunked, close) or ``silent`` (never answers); every ``fail_every``-th request gets 500."""

    def __init__(self, mode: str = "length", fail_every: int = 0):
        self.mode, self.fail_every, self.received = mode, fail_every, 0
        self.transports: list[asyncio.Transport] = []
        self.loop = asyncio.new_event_loop()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10)

    def _run(self, started: threading.Event) -> None:
        server = self.loop.run_until_complete(
            self.loop.create_server(lambda: _TinyProtocol(self), "127.0.0.1", self.port)
        )
        started.set()
        self.loop.run_forever()
        server.close()
        for transport in self.transports:
            transport.close()
        self.loop.run_until_complete(asyncio.sleep(0.05))  # let the closes complete
        self.loop.close()

    def answer(self) -> bytes:
        self.received += 1
        failed = self.fail_every and self.received % self.fail_every == 0
        status = b"500 Internal Server Error" if failed else b"200 OK"
        if self.mode == "chunked":
            chunked = b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
            return b"HTTP/1.1 " + status + b"\r\n" + chunked
        close = b"Connection: close\r\n" if self.mode == "close" else b""
        return b"HTTP/1.1 " + status + b"\r\n" + close + b"Content-Length: 2\r\n\r\n{}"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class _TinyProtocol(asyncio.Protocol):
    def __init__(self, server: _TinyServer):
        self.server, self.buffer = server, b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server.transports.append(transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, rest = self.buffer.split(b"\r\n\r\n", 1)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            if self.server.mode == "silent":
                continue
            self.transport.write(self.server.answer())
            if self.server.mode == "close":
                self.transport.close()
                return


@pytest.fixture
def tiny() -> Iterator[type[_TinyServer]]:
    servers: list[_TinyServer] = []

    def make(*args: Any, **kwargs: Any) -> _TinyServer:
        servers.append(_TinyServer(*args, **kwargs))
        return servers[-1]

    yield make  # type: ignore[misc]
    for server in servers:
        server.stop()


def _load(url: str, concurrency: int = 4, **kwargs: Any) -> LevelResult:
    options: dict[str, Any] = {"duration_s": 0.5, "warmup_s": 0.2, **kwargs}
    return run_load(
        url,
        model="m",
        protocol="v2",
        concurrency=concurrency,
        payload=b'{"inputs": []}',
        headers={"Content-Type": "application/json"},
        **options,
    )


@pytest.mark.parametrize("mode", ["length", "chunked", "close"])
def test_requests_and_500s_are_counted(tiny: Any, mode: str) -> None:
    server = tiny(mode, fail_every=5)
    result = _load(server.url, concurrency=4)
    assert result.requests > 20 and result.requests <= server.received
    # The window holds a contiguous run of the server's sequence, give or take the
    # requests in flight at either edge, so one in five failed.
    assert abs(result.errors - result.requests / 5) <= 2 * 4 + 2, result
    assert result.error_kinds == {"HTTP 500": result.errors}
    ok = result.requests - result.errors
    assert result.throughput == pytest.approx(ok / result.window_s, rel=0.01)
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms  # type: ignore[operator]


def test_clients_spread_over_processes_are_merged(tiny: Any) -> None:
    server = tiny()
    result = _load(server.url, concurrency=4, processes=2)
    assert result.concurrency == 4 and result.errors == 0
    assert 20 < result.requests <= server.received and result.throughput > 0


def test_unanswered_requests_time_out_and_refused_connections_count() -> None:
    server = _TinyServer("silent")
    try:
        stuck = _load(server.url, concurrency=2, timeout_s=0.15, duration_s=0.6)
    finally:
        server.stop()
    assert stuck.error_kinds.get("timeout", 0) >= 2 and stuck.throughput == 0
    assert stuck.p50_ms is None
    refused = _load(f"http://127.0.0.1:{free_port()}", concurrency=2, duration_s=0.3)
    assert set(refused.error_kinds) == {"connection refused"} and refused.errors > 0


def test_self_test_measures_the_generator_ceiling() -> None:
    report = self_test([2], 0.3, warmup_s=0.1)
    (level,) = report.levels
    assert level.errors == 0 and level.throughput > 1000  # far above any model server
    assert report.ceiling is None and "generator self-test" in report.table()


def test_report_flags_levels_near_the_ceiling() -> None:
    def level(concurrency: int, rps: float, errors: dict[str, int]) -> LevelResult:
        return LevelResult(
            concurrency, 100, sum(errors.values()), rps, 1.0, 1.0, 2.0, 3.0, 4.0, 1.5, 5.0, errors
        )

    report = BenchReport(
        "http://x",
        "m",
        "v2",
        "v2 JSON FP32 [1, 1, 8, 8], 1.3 KB",
        {"duration_s": 1.0, "warmup_s": 1.0, "processes": 1},
        [level(1, 100.0, {}), level(64, 6000.0, {"HTTP 503": 2})],
        level(64, 10000.0, {}),
    )
    flags = [entry["near_ceiling"] for entry in report.to_dict()["levels"]]
    assert flags == [False, True]
    table = report.table()
    assert "generator ceiling: 10,000 req/s" in table and "may be the bottleneck" in table
    assert "errors at concurrency 64: HTTP 503 x 2" in table
    json.dumps(report.to_dict())  # no NaN, no objects: plain JSON


def test_cli_self_test_and_bad_input() -> None:
    result = run_cli("bench", "--self-test", "-c", "2", "--duration", "0.3s", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["levels"][0]["throughput"] > 0
    for args, message in [
        (["http://127.0.0.1:1", "--model", "m", "--duration", "10x"], "not a positive duration"),
        ([], "pass the server URL"),
        (["http://127.0.0.1:1"], "cannot reach"),  # asked which model it serves
        (
            ["http://127.0.0.1:1", "--model", "m", "--protocol", "v3"],
            "'v3' is not one of 'v2', 'v1'",
        ),
        (["http://127.0.0.1:1", "--model", "m"], "cannot reach"),
    ]:
        failed = run_cli("bench", *args)
        assert failed.returncode == 2 and message in failed.stderr, failed.stderr
        assert failed.stderr.strip().count("\n") == 0, failed.stderr


# -- against the real server -------------------------------------------------------------


@pytest.fixture
def served(trained, use_session_home) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    server = Server("digits-cnn@candidate", "poll_interval_s=0")
    yield server
    server.stop()


@pytest.mark.slow
def test_v2_and_v1_against_the_real_server(served: Server) -> None:
    for protocol in ("v2", "v1"):
        report = bench(
            served.url, "digits-cnn", [4], 1.0, protocol, warmup_s=0.3, measure_ceiling=False
        )
        (level,) = report.levels
        assert level.errors == 0 and level.requests > 10, level
        assert level.p99_ms >= level.p50_ms > 0  # type: ignore[operator]
    assert "v1 JSON uint8 [1, 8, 8]" in report.payload
    with pytest.raises(ModelyardError, match="'nope' is not served here"):
        bench(served.url, "nope", [1], 1.0)
    with pytest.raises(ModelyardError, match=r"answered 400: instances\[0\] has shape"):
        bench(served.url, "digits-cnn", [1], 1.0, "v1", shape=(1, 9, 9))


@pytest.mark.slow
def test_cli_json_against_the_real_server(served: Server) -> None:
    result = run_cli(
        "bench", served.url, "--model", "digits-cnn", "-c", "2", "--duration", "0.5s",
        "--warmup", "0.2s", "--binary", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["target"]["payload"].startswith("v2 binary FP32 [1, 1, 8, 8]")
    (level,) = data["levels"]
    assert level["errors"] == 0 and level["p99_ms"] >= level["p50_ms"] > 0
    assert data["ceiling"]["throughput"] > level["throughput"]  # the generator is not the limit
    assert data["machine"]["cpus"] >= 1 and data["settings"]["concurrency"] == [2]

"""The generator's ceiling: its own throughput against an endpoint that does no work.

A load generator slower than the server measures itself. The trivial endpoint is
a raw asyncio server in its own process (so it shares neither the generator's
core nor its GIL) that reads each request and answers ``200 {}`` at once; driving
it with the same request bytes, clients and processes as a real run gives the
most that run could possibly measure.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from modelyard.bench.loadgen import new_loop, run_load
from modelyard.bench.payloads import Payload, tensor_payload
from modelyard.bench.protocol import Protocol
from modelyard.bench.stats import LevelResult

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
Progress = Callable[[str], None]


class _TrivialProtocol(asyncio.Protocol):
    """Reads each request (headers, then Content-Length bytes) and answers ``{}`` at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.buffer = bytearray()
        self.need = -1  # bytes the current request spans, -1 while its headers are incomplete

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            if self.need < 0:
                head_end = buffer.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = bytes(buffer[:head_end]).lower()
                at = head.find(b"\r\ncontent-length:")
                value_end = head.find(b"\r\n", at + 2) if at >= 0 else -1
                length = int(head[at + 17 : value_end if value_end > 0 else None]) if at >= 0 else 0
                self.need = head_end + 4 + length
            if len(buffer) < self.need:
                return
            del buffer[: self.need]
            self.need = -1
            self.transport.write(_OK)


def _serve_trivial(ready: Any) -> None:
    loop = new_loop()
    server = loop.run_until_complete(loop.create_server(_TrivialProtocol, "127.0.0.1", 0))
    ready.send(server.sockets[0].getsockname()[1])
    loop.run_forever()


@contextlib.contextmanager
def trivial_endpoint() -> Iterator[str]:
    """A trivial HTTP endpoint in its own process (so it does not share the generator's
    core or GIL); yields its URL and stops it on exit."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_serve_trivial, args=(sender,), daemon=True)
    process.start()
    try:
        if not receiver.poll(60):
            raise RuntimeError("the trivial endpoint did not start in 60 s")
        yield f"http://127.0.0.1:{receiver.recv()}"
    finally:
        process.terminate()
        process.join(timeout=5)


def ceiling(
    concurrency_levels: Sequence[int] = (1, 8, 32, 64),
    *,
    duration_s: float = 2.0,
    warmup_s: float = 0.5,
    processes: int = 1,
    payload: Payload | None = None,
    progress: Progress | None = None,
) -> list[LevelResult]:
    """The generator's own throughput against a trivial endpoint, per concurrency level.

    ``payload`` defaults to a small v2 JSON tensor; pass the benchmark's own so the
    generator renders and sends the same bytes it will send the server.
    """
    payload = payload or tensor_payload(Protocol.v2, (1, 8, 8))
    results = []
    with trivial_endpoint() as url:
        for level in concurrency_levels:
            result = run_load(
                url,
                model="trivial",
                protocol=Protocol.v2,
                concurrency=level,
                duration_s=duration_s,
                warmup_s=warmup_s,
                payload=payload.body,
                headers=payload.headers,
                processes=processes,
            )
            if progress:
                progress(f"ceiling at concurrency {level}: {result.throughput:,.0f} req/s")
            results.append(result)
    return results

"""Raw HTTP/1.1 keep-alive client connections: the generator's hot path.

Each closed-loop client owns one connection. The engine must cost far less than
the server it measures, so this is an ``asyncio.Protocol`` with no coroutine per
request and no HTTP library: the request is bytes rendered once, and reading an
answer is one scan for the header end, a status parse and a Content-Length (or
chunked) framing of the body. Bodies are not parsed; the status decides success.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

from modelyard.errors import UsageError

_HEAD_END = b"\r\n\r\n"
_NO_BODY = (204, 304)
_CONNECT_BACKOFF_S = 0.05  # a refused connect retries after this, so it cannot spin a core


@dataclass(frozen=True)
class Endpoint:
    """Where requests go, split once from the URL (picklable for worker processes)."""

    host: str
    port: int
    tls: bool
    prefix: str
    """A path prefix in the URL (a server behind a proxy at ``/api``), without a trailing /."""

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Split ``url``; ``localhost:8000`` (no scheme) means ``http://localhost:8000``."""
        url = url.strip()
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme.lower() not in ("http", "https"):
            raise UsageError(
                f"'{url}' is not an http(s) URL ({parts.scheme}:// is not spoken here); "
                "pass e.g. http://127.0.0.1:8000 or 127.0.0.1:8000"
            )
        if not parts.hostname:
            raise UsageError(f"'{url}' names no host; pass e.g. http://127.0.0.1:8000")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise UsageError(
                f"'{url}' has an invalid port; pass e.g. http://127.0.0.1:8000"
            ) from None
        return cls(parts.hostname, port, parts.scheme.lower() == "https", parts.path.rstrip("/"))

    @property
    def url(self) -> str:
        """The base URL, scheme included: what requests outside the engine are sent to."""
        return f"{'https' if self.tls else 'http'}://{self.authority}{self.prefix}"

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        return f"{host}:{self.port}"


def render_request(endpoint: Endpoint, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The exact bytes every request sends; built once, before the clock starts."""
    lines = [
        f"POST {endpoint.prefix}{path} HTTP/1.1",
        f"Host: {endpoint.authority}",
        "User-Agent: modelyard-bench",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Tally:
    """What one process saw inside the measured window."""

    measuring: bool = False
    stopped: bool = False
    latencies: array[float] = field(default_factory=lambda: array("d"))
    errors: Counter[str] = field(default_factory=Counter)

    def fail(self, kind: str) -> None:
        if self.measuring:
            self.errors[kind] += 1


def _error_kind(error: BaseException | None) -> str:
    if error is None:
        return "connection closed"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    return type(error).__name__


def _chunked_end(buffer: bytearray, start: int) -> int:
    """Index just past a complete chunked body starting at ``start``, or -1 if incomplete."""
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return -1
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        if size == 0:  # last chunk, then optional trailers and an empty line
            if buffer[line_end + 2 : line_end + 4] == b"\r\n":
                return line_end + 4
            trailers_end = buffer.find(_HEAD_END, line_end)
            return -1 if trailers_end < 0 else trailers_end + 4
        position = line_end + 2 + size + 2
        if position > len(buffer):
            return -1


class Connection(asyncio.Protocol):
    """One keep-alive connection of one client: send, parse the answer, send again."""

    def __init__(self, client: Client):
        self.client = client
        self.tally = client.tally
        self.request = client.request
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.waiting = False
        self.status = 0
        self.body_start = -1  # index after the header block, -1 while headers are incomplete
        self.body_end = -1  # -1: unknown yet; -2: chunked; -3: ends when the server closes
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.client.connection = self
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.waiting = True
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while self.waiting:
            if self.body_start < 0 and not self._parse_head():
                return
            if self.body_end == -2:
                try:
                    end = _chunked_end(buffer, self.body_start)
                except ValueError:  # a chunk size that is not hex
                    self.fail("bad response")
                    return
                if end < 0:
                    return
            elif self.body_end == -3 or len(buffer) < self.body_end:
                return
            else:
                end = self.body_end
            del buffer[:end]
            self._answered()

    def _parse_head(self) -> bool:
        """Read the status line and the headers that frame the body; False until complete."""
        buffer = self.buffer
        head_end = buffer.find(_HEAD_END)
        if head_end < 0:
            return False
        head = bytes(buffer[:head_end]).lower()
        try:
            if not head.startswith(b"http/1."):
                raise ValueError
            status = int(head[9:12])
        except ValueError:
            self.fail("bad response")
            return False
        if 100 <= status < 200:  # an interim answer: the real one follows
            del buffer[: head_end + 4]
            return self._parse_head()
        self.status = status
        self.body_start = head_end + 4
        self.close_after = b"\r\nconnection: close" in head
        length_at = head.find(b"\r\ncontent-length:")
        if status in _NO_BODY:
            self.body_end = self.body_start
        elif length_at >= 0:
            value_end = head.find(b"\r\n", length_at + 2)
            value = head[length_at + 17 : value_end if value_end > 0 else len(head)]
            try:
                self.body_end = self.body_start + int(value)
            except ValueError:
                self.fail("bad response")
                return False
        elif b"\r\ntransfer-encoding:" in head and b"chunked" in head:
            self.body_end = -2
        else:  # neither: the body runs until the server closes, so this connection ends
            self.body_end = -3
            self.close_after = True
        return True

    def _answered(self) -> None:
        finished = time.perf_counter()
        self.waiting = False
        self.body_start = self.body_end = -1
        tally = self.tally
        if tally.measuring:
            if 200 <= self.status < 300:
                tally.latencies.append(finished - self.sent_at)
            else:
                tally.errors[f"HTTP {self.status}"] += 1
        if tally.stopped:
            return
        if self.close_after:
            assert self.transport is not None
            self.transport.close()  # connection_lost reconnects
        else:
            self._send()

    def fail(self, kind: str) -> None:
        """Count the request in flight as failed and drop the connection (it reconnects)."""
        if self.waiting:
            self.waiting = False
            self.tally.fail(kind)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting and not self.tally.stopped:
            if self.body_end == -3:  # a body delimited by the close: complete now
                self._answered()
            else:
                self.waiting = False
                self.tally.fail(_error_kind(exc))
        self.client.connection = None
        if not self.tally.stopped:
            self.client.reconnect()


class Client:
    """One closed-loop client: keeps a connection open (reconnecting after failures)."""

    def __init__(
        self, endpoint: Endpoint, request: bytes, tally: Tally, tls: ssl.SSLContext | None
    ):
        self.endpoint = endpoint
        self.request = request
        self.tally = tally
        self.tls = tls
        self.connection: Connection | None = None
        self.task: asyncio.Task[None] | None = None

    def reconnect(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.tally.stopped:
            try:
                await loop.create_connection(
                    lambda: Connection(self),
                    self.endpoint.host,
                    self.endpoint.port,
                    ssl=self.tls,
                )
                return
            except OSError as error:
                self.tally.fail(_error_kind(error))
                await asyncio.sleep(_CONNECT_BACKOFF_S)

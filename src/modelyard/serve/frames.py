"""``multiprocessing.connection``'s message framing, for pipe ends that the event loop
reads and writes without blocking and without a thread of its own.

The shadow's process (:mod:`modelyard.serve.shadow_child`) reads and writes its pipes
through :class:`multiprocessing.connection.Connection`, whose calls block. The server
drives its own ends from the event loop instead (``add_reader`` / ``add_writer``):
a thread beside the loop that runs Python for every message takes the GIL from it, and
on the MNIST model the server's two shadow threads made ~1 context switch per answer
(benchmarks/serving/RESULTS.md, 2026-12-07). So the server writes and parses the same
frames that ``Connection`` does (CPython's ``_send_bytes`` / ``_recv_bytes``): a 4-byte
big-endian signed length, or -1 then an 8-byte length for 2 GiB or more, then the
payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections import deque
from collections.abc import Callable, Iterable

_SHORT = struct.Struct("!i")
_LONG = struct.Struct("!Q")
_SHORT_MAX = 0x7FFFFFFF
_JOIN_BELOW = 16384
"""A payload this short goes out in one write with its header (as ``Connection`` does)."""
READ_BYTES = 1 << 16
"""Bytes one read takes from the pipe."""


def frame_header(size: int) -> bytes:
    """The length prefix of a ``size``-byte payload."""
    if size > _SHORT_MAX:
        return _SHORT.pack(-1) + _LONG.pack(size)
    return _SHORT.pack(size)


class FrameReader:
    """Whole payloads out of a byte stream that arrives in pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Take ``data``; give back every payload it completes, in order."""
        buffer = self._buffer
        buffer += data
        payloads = []
        start = 0
        while len(buffer) - start >= _SHORT.size:
            (size,) = _SHORT.unpack_from(buffer, start)
            head = _SHORT.size
            if size == -1:
                if len(buffer) - start < head + _LONG.size:
                    break
                (size,) = _LONG.unpack_from(buffer, start + head)
                head += _LONG.size
            elif size < 0:
                raise ValueError(f"a frame's length is {size}: the stream is out of step")
            end = start + head + size
            if len(buffer) < end:
                break
            payloads.append(bytes(buffer[start + head : end]))
            start = end
        del buffer[:start]
        return payloads


class FrameWriter:
    """Frames written to a pipe from the event loop, never blocking it: what the pipe
    cannot take now waits, in order, and goes when it drains (``add_writer``).

    A message is the frames of one :meth:`write`; it may stand for a number of
    requests (``requests``). :attr:`unsent_requests` counts those of messages not wholly
    written, and when the pipe breaks (the reader is gone) they are handed to
    ``on_broken``, as are those of every later message: none will be read."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        on_drained: Callable[[], None],
        on_broken: Callable[[int, OSError], None],
    ) -> None:
        os.set_blocking(fd, False)
        self.loop = loop
        self.fd = fd
        self.on_drained = on_drained
        """Called when the pipe took the last waiting bytes after it had been full."""
        self.on_broken = on_broken
        self.unsent_requests = 0
        self.broken: OSError | None = None
        self._chunks: deque[tuple[memoryview, int]] = deque()  # (bytes, requests when done)
        self._watching = False
        self._closed = False

    @property
    def waiting(self) -> bool:
        """Whether bytes wait for the pipe to drain."""
        return bool(self._chunks)

    def write(self, payloads: Iterable[bytes | memoryview], requests: int = 0) -> None:
        """Frame ``payloads`` as one message and write what the pipe takes now."""
        if self.broken is not None or self._closed:
            self.on_broken(requests, self.broken or BrokenPipeError("the pipe is closed"))
            return
        chunks: list[memoryview] = []
        for payload in payloads:
            view = memoryview(payload)
            if view.ndim != 1 or view.format != "B":
                view = view.cast("B")  # flat bytes: a short write is resumed by slicing
            if view.nbytes < _JOIN_BELOW:
                chunks.append(memoryview(frame_header(view.nbytes) + view.tobytes()))
            else:
                chunks.append(memoryview(frame_header(view.nbytes)))
                chunks.append(view)
        if not chunks:
            return
        last = len(chunks) - 1
        self._chunks.extend((chunk, requests if i == last else 0) for i, chunk in enumerate(chunks))
        self.unsent_requests += requests
        if not self._watching:
            self._drain()

    def _drain(self) -> None:
        chunks = self._chunks
        while chunks:
            chunk, requests = chunks[0]
            try:
                written = os.write(self.fd, chunk)
            except BlockingIOError:
                written = 0
            except OSError as error:  # the reader is gone
                self._break(error)
                return
            if written < len(chunk):
                chunks[0] = (chunk[written:], requests)
                if not self._watching:
                    self.loop.add_writer(self.fd, self._writable)
                    self._watching = True
                return
            chunks.popleft()
            self.unsent_requests -= requests

    def _writable(self) -> None:
        self._drain()
        if not self._chunks and self._watching:
            self.loop.remove_writer(self.fd)
            self._watching = False
            self.on_drained()

    def _break(self, error: OSError) -> None:
        self.broken = error
        self.on_broken(self._drop(), error)

    def _drop(self) -> int:
        """Stop writing, forget what waits; the requests of the messages it cut."""
        self._unwatch()
        self._chunks.clear()
        lost, self.unsent_requests = self.unsent_requests, 0
        return lost

    def _unwatch(self) -> None:
        if self._watching:
            self.loop.remove_writer(self.fd)
            self._watching = False

    def close(self) -> int:
        """Stop writing and close the pipe (the reader sees its end); the requests of
        messages not wholly written, which it will never read whole."""
        lost = self._drop()
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                os.close(self.fd)
        return lost

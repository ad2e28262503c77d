"""The server's framing matches multiprocessing's Connection both ways: the child reads
with a Connection what the event loop writes, and the loop parses what it sends."""

from __future__ import annotations

import asyncio
import os
import random
import struct
import threading
from multiprocessing.connection import Connection

import pytest

from modelyard.serve.frames import FrameReader, FrameWriter, frame_header

PAYLOADS = [b"", b"x", bytes(range(256)) * 64, os.urandom(300_000)]  # 16 KiB, 300 KB


def test_what_a_connection_sends_is_parsed_whole_however_it_arrives_in_pieces() -> None:
    reading, writing = os.pipe()
    sender = Connection(writing, readable=False)
    thread = threading.Thread(target=lambda: [sender.send_bytes(one) for one in PAYLOADS])
    thread.start()
    stream = b""
    while len(stream) < sum(len(one) + 4 for one in PAYLOADS):
        stream += os.read(reading, 1 << 16)
    thread.join()
    os.close(reading)
    sender.close()
    reader, parsed, chances = FrameReader(), [], random.Random(0)
    start = 0
    while start < len(stream):  # pieces of 1 byte to 64 KiB, a header split anywhere
        end = start + chances.choice([1, 3, 7, 4096, 65536])
        parsed += reader.feed(stream[start:end])
        start = end
    assert parsed == PAYLOADS


def test_a_long_frame_header_is_read_as_connection_writes_it() -> None:
    assert frame_header(2**31) == struct.pack("!i", -1) + struct.pack("!Q", 2**31)
    reader = FrameReader()
    assert reader.feed(struct.pack("!i", -1) + struct.pack("!Q", 3)[:5]) == []
    assert reader.feed(struct.pack("!Q", 3)[5:] + b"abc" + frame_header(1) + b"d") == [
        b"abc",
        b"d",
    ]


def test_a_stream_out_of_step_is_refused() -> None:
    with pytest.raises(ValueError, match="out of step"):
        FrameReader().feed(struct.pack("!i", -7) + b"abc")


def test_what_the_writer_writes_a_connection_reads_even_after_the_pipe_was_full() -> None:
    async def main() -> list[bytes]:
        reading, writing = os.pipe()
        drained: list[bool] = []
        writer = FrameWriter(
            asyncio.get_running_loop(), writing, lambda: drained.append(True), None
        )  # type: ignore[arg-type]
        for one in PAYLOADS:
            writer.write([one, memoryview(one)], requests=1)
        assert writer.waiting and writer.unsent_requests >= 1  # 600 KB in a 64 KiB pipe
        receiver = Connection(reading, writable=False)
        got: list[bytes] = []
        thread = threading.Thread(
            target=lambda: got.extend(receiver.recv_bytes() for _ in range(2 * len(PAYLOADS)))
        )
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.01)
        assert drained == [True] and not writer.waiting and writer.unsent_requests == 0
        writer.close()
        receiver.close()
        return got

    assert asyncio.run(main()) == [one for one in PAYLOADS for _ in range(2)]


def test_a_broken_pipe_hands_back_the_requests_no_one_will_read() -> None:
    async def main() -> list[int]:
        reading, writing = os.pipe()
        lost: list[int] = []
        writer = FrameWriter(
            asyncio.get_running_loop(), writing, lambda: None, lambda n, _: lost.append(n)
        )
        writer.write([os.urandom(200_000)], requests=5)  # waits: the pipe is full
        os.close(reading)  # the reader is gone
        await asyncio.sleep(0.05)  # the loop finds the pipe writable, and broken
        writer.write([b"later"], requests=2)  # none will be read either
        writer.close()
        return lost

    assert asyncio.run(main()) == [5, 2]

"""One write per response: writes pair up, and none waits past the loop's turn."""

from __future__ import annotations

import asyncio
from typing import Any

from modelyard.serve.httpwrite import CoalescingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else default


def _wrap() -> tuple[FakeTransport, CoalescingTransport]:
    raw = FakeTransport()
    return raw, CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]


def test_header_and_body_leave_in_one_write_in_order() -> None:
    async def main() -> list[bytes]:
        raw, transport = _wrap()
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert raw.writes == []  # held for the body
        assert transport.get_write_buffer_size() == 19
        transport.write(memoryview(b"body"))
        transport.write(b"next")  # a third write waits for a partner or the loop's turn
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        await asyncio.sleep(0)
        return raw.writes

    assert asyncio.run(main()) == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]


def test_a_lone_write_goes_out_at_the_end_of_the_loop_turn() -> None:
    async def main() -> None:
        raw, transport = _wrap()
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        assert transport.get_extra_info("sockname") == ("127.0.0.1", 8000)  # delegated

    asyncio.run(main())


def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    async def main() -> None:
        raw, transport = _wrap()
        transport.write(b"last words")
        transport.close()
        assert raw.writes == [b"last words"] and raw.closed
        await asyncio.sleep(0)  # the scheduled flush finds nothing and writes nothing
        assert raw.writes == [b"last words"]
        raw, transport = _wrap()
        transport.write(b"headers")
        transport.abort()
        await asyncio.sleep(0)
        assert raw.writes == [] and raw.aborted

    asyncio.run(main())

"""CPU per request of ``modelyard serve``'s request path, without sockets or a client.

    PYTHONPATH=<a checkout's src> .venv/bin/python benchmarks/frontier/request_path_cpu.py \\
        --bundle <bundle folder> [--requests 15000] [--concurrency 32] [key=value ...]

The served app (``create_app``, default settings: prediction log and metrics on)
behind uvicorn's httptools protocol as ``modelyard serve`` runs it, in this process,
on uvloop. ``--concurrency`` fake connections each send the next v2 JSON request (one
image, as ``modelyard bench`` sends) as soon as the answer to the last is written.
No socket, no kernel and no load generator share the CPU, so the CPU time per request
of the event-loop thread (HTTP parsing, the ASGI app, decoding, batching, metrics,
encoding) and of the whole process (plus the model's threads and the log thread) move
far less on a busy machine than a served rate does. Set PYTHONPATH to compare two
commits' servers: alternate them, several runs each. One JSON line per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import uvloop
from uvicorn.config import Config
from uvicorn.server import ServerState

from modelyard.serve.app import create_app
from modelyard.serve.httpwrite import CoalescingHttpToolsProtocol
from modelyard.serve.settings import settings_from


def _request(model: str, shape: tuple[int, ...]) -> bytes:
    data = np.random.default_rng(0).standard_normal((1, *shape), dtype=np.float32)
    tensor = {"name": "input", "shape": [1, *shape], "datatype": "FP32"}
    body = json.dumps({"inputs": [{**tensor, "data": data.ravel().tolist()}]}).encode()
    head = (
        f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Load:
    """What the fake connections share: requests sent, answered and failed."""

    def __init__(self, total: int, request: bytes) -> None:
        self.total, self.request = total, request
        self.sent = self.answered = self.failed = 0
        self.done = asyncio.Event()


class _Connection(asyncio.Transport):
    """A transport that takes each answer and, on the loop's next turn, sends the next
    request (HTTP/1.1 keep-alive, one request at a time, like a benchmark client)."""

    def __init__(self, protocol: Any, load: _Load, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.protocol, self.load, self.loop = protocol, load, loop
        protocol.connection_made(self)

    def send_next(self) -> None:
        self.load.sent += 1
        self.loop.call_soon(self.protocol.data_received, self.load.request)

    def write(self, data: Any) -> None:
        if bytes(data[:9]) != b"HTTP/1.1 ":
            return  # a body written apart from its status line
        load = self.load
        load.answered += 1
        load.failed += bytes(data[:12]) != b"HTTP/1.1 200"
        if load.sent < load.total:
            self.send_next()
        elif load.answered >= load.total:
            load.done.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    manifest = json.loads((args.bundle / "bundle.json").read_text())
    prep = manifest["preprocessing"]
    shape = (prep["channels"], prep["height"], prep["width"])
    settings = settings_from([f"model={args.bundle}", "poll_interval_s=0", *args.settings])
    app = create_app(settings)
    loop = asyncio.get_running_loop()
    config = Config(app, http=CoalescingHttpToolsProtocol, lifespan="off", log_level="warning")
    config.load()
    state = ServerState()
    request = _request(manifest["name"], shape)
    figures: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        for name, total in (("warm-up", args.requests // 5), ("measured", args.requests)):
            load = _Load(total, request)
            connections = [
                _Connection(
                    CoalescingHttpToolsProtocol(
                        config=config, server_state=state, app_state={}, _loop=loop
                    ),
                    load,
                    loop,
                )
                for _ in range(args.concurrency)
            ]
            thread, process, wall = time.thread_time(), time.process_time(), time.perf_counter()
            for connection in connections:
                connection.send_next()
            await load.done.wait()
            thread = time.thread_time() - thread
            process = time.process_time() - process
            wall = time.perf_counter() - wall
            for connection in connections:
                connection.protocol.connection_lost(None)
            if name == "measured":
                figures = {
                    "loop_thread_us_per_request": 1e6 * thread / total,
                    "process_us_per_request": 1e6 * process / total,
                    "requests_per_s": total / wall,
                    "failed": load.failed,
                }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=15000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("settings", nargs="*", help="serve settings, key=value")
    args = parser.parse_args()
    import modelyard

    figures = uvloop.run(_measure(args))
    row = {"src": str(Path(modelyard.__file__).parents[1]), "bundle": str(args.bundle), **figures}
    print(json.dumps(row), flush=True)
    if figures.get("failed"):
        sys.exit(f"{figures['failed']} requests failed")


if __name__ == "__main__":
    main()

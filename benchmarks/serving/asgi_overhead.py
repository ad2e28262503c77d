"""Event-loop CPU per request of the modelyard app, in process, without HTTP or sockets.

    .venv/bin/python benchmarks/serving/asgi_overhead.py BUNDLE_DIR [-c 32] [-n 20000] [--set k=v ...] [--src DIR]

``concurrency`` coroutines each send ``requests / concurrency`` v2 JSON infer requests
straight to the ASGI app (the same body `modelyard bench --shape 1,28,28` sends) and
the script reports the main thread's CPU time per request (``time.thread_time``),
i.e. what the app costs the event loop, ONNX Runtime's own threads excluded. Being
CPU time of one thread, it barely moves when other jobs share the machine, so it is
the number to iterate on; wall-clock req/s needs the real server and `modelyard bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


async def _drive(app, path: str, body: bytes, concurrency: int, total: int) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    statuses: dict[int, int] = {}
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]

    async def one() -> None:
        sent = False

        async def receive() -> dict:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        await app(scope, receive, send)

    async def client(n: int) -> None:
        for _ in range(n):
            await one()

    per_client = total // concurrency
    await asyncio.gather(*(client(per_client) for _ in range(concurrency)))
    return per_client * concurrency, statuses


async def main_async(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.src)
    from modelyard.bench.payloads import tensor_payload
    from modelyard.serve.app import create_app
    from modelyard.serve.settings import settings_from

    settings = settings_from(args.settings, model=args.bundle, poll_interval_s=0)
    app = create_app(settings)
    body = tensor_payload("v2", (1, 28, 28)).body
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    ready, stopping = asyncio.Event(), asyncio.Event()

    async def lifespan_receive() -> dict:
        if len(messages) == 1:
            await stopping.wait()
        return messages.pop(0)

    async def lifespan_send(message: dict) -> None:
        if message["type"].endswith("failed"):
            raise RuntimeError(message)
        ready.set()

    lifespan = asyncio.create_task(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            lifespan_receive,
            lifespan_send,
        )
    )
    await ready.wait()
    name = app.state.runtime.current.name
    path = args.path.format(name=name)
    await _drive(app, path, body, args.concurrency, 2000)  # warm-up
    gc.collect()
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    done, statuses = await _drive(app, path, body, args.concurrency, args.requests)
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    print(
        f"{done} requests, c={args.concurrency}: event-loop CPU {1e6 * cpu / done:.1f} us/request, "
        f"wall {done / wall:,.0f} req/s, statuses {statuses}, load1 {os.getloadavg()[0]:.2f}"
    )
    stopping.set()
    await lifespan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--set", dest="settings", action="append", default=[], help="k=v")
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("-n", "--requests", type=int, default=20000)
    parser.add_argument("--path", default="/v2/models/{name}/infer")
    parser.add_argument(
        "--src", default=str(HERE.parents[1] / "src"), help="the modelyard source tree to load"
    )
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

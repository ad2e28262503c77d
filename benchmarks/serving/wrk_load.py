"""``wrk`` as the load generator for ``shadow_overhead.py --loadgen wrk``: C, one
thread, so the load tool's own CPU takes less of this 2-vCPU machine than
``modelyard bench``'s Python clients do. It POSTs the body and headers ``modelyard
bench`` would send the served model (``wrk_post.lua``), at the same concurrency,
after 1 s of unmeasured warm-up (``modelyard bench``'s default)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
_PERCENTILE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
_ERRORS = re.compile(r"(?:Non-2xx or 3xx responses:|connect|read|write|timeout) (\d+)")

Request = tuple[Path, list[str], str]
"""The body's file, its headers ("Name: value") and the path it is POSTed to."""


def request_file(port: int, folder: Path) -> Request:
    """The v2 JSON body ``modelyard bench`` sends the model served on ``port`` (built
    from its metadata), written to ``folder``, with its headers and path."""
    from modelyard.bench.loadgen import infer_path
    from modelyard.bench.payloads import build_payload, resolve_model
    from modelyard.bench.protocol import Protocol

    url = f"http://127.0.0.1:{port}"
    model = resolve_model(url, None, {})
    payload = build_payload(url, model, Protocol.v2, headers={})
    body = folder / "wrk-body.json"
    body.write_bytes(payload.body)
    headers = [f"{name}: {value}" for name, value in payload.headers.items()]
    return body, headers, infer_path(Protocol.v2, model)


def parse_report(text: str) -> dict[str, float]:
    """Requests, req/s, p50 and p99 (ms) and errors (non-2xx answers and socket
    errors) from ``wrk --latency``'s report."""
    latency = {q: float(value) * _UNITS[unit] for q, value, unit in _PERCENTILE.findall(text)}
    requests = re.search(r"^\s+(\d+) requests in", text, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if requests is None or rate is None or set(latency) != {"50", "99"}:
        raise ValueError(f"cannot read wrk's report:\n{text}")
    return {
        "requests": float(requests.group(1)),
        "throughput": float(rate.group(1)),
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "errors": float(sum(int(n) for n in _ERRORS.findall(text))),
    }


def run(port: int, duration: str, request: Request, clients: int) -> dict[str, float]:
    """``wrk`` at ``clients`` connections on one thread: 1 s of warm-up, then the
    measured ``duration`` (``5s``)."""
    file, headers, path = request
    url = f"http://127.0.0.1:{port}{path}"
    script = ["-s", str(HERE / "wrk_post.lua"), url, "--", str(file), *headers]
    base = ["wrk", "-t1", f"-c{clients}", "--latency"]
    subprocess.run([*base, "-d1s", *script], capture_output=True, check=True)
    done = subprocess.run(
        [*base, f"-d{duration}", *script], capture_output=True, text=True, check=True
    )
    return parse_report(done.stdout)

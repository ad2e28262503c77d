"""Every HTTP route of a real server process, fuzzed from its own /openapi.json.

Schemathesis generates requests from the schema (valid, invalid, and with
unknown model names and versions) and checks that none gets a 5xx, and that a
405 names the allowed methods. Afterwards the server must still be ready and
its memory close to where it started.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers import Server

pytestmark = pytest.mark.slow

CHECKS = "not_a_server_error,unsupported_method,allow_header_conformance"
EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def served(trained, use_session_home) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    server = Server("digits-cnn@candidate", "poll_interval_s=0", "log_predictions=false")
    yield server
    assert server.stop() == 0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _schemathesis(server: Server, config: Path, seed: int) -> int:
    """Run the schemathesis CLI against the server; returns the number of cases run."""
    exe = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(exe),
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            str(seed),
            "--request-timeout",
            "10",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.parent,  # its crash cache goes there, not into the checkout
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    match = re.search(r"(\d+) generated", result.stdout)
    assert match, result.stdout[-3000:]
    return int(match[1])


def test_no_route_answers_5xx_to_generated_requests(served: Server, tmp_path: Path) -> None:
    with httpx.Client(timeout=10) as client:
        version = client.get(f"{served.url}/v2/models/digits-cnn").json()["versions"][0]
        for _ in range(20):  # warm the allocator before taking the baseline
            client.post(
                f"{served.url}/v1/models/digits-cnn:predict",
                json={"instances": [[[0] * 8] * 8]},
            )
    baseline = _rss_mb(served.process.pid)
    # Pass 1: the served model's name and version, so bodies reach the decoders.
    served_model = tmp_path / "served.toml"
    served_model.write_text(
        f'[parameters]\n"path.name" = "digits-cnn"\n"path.version" = "{version}"\n'
    )
    # Pass 2: whatever names and versions schemathesis makes up (404s, odd paths).
    anything = tmp_path / "anything.toml"
    anything.write_text("")
    cases = _schemathesis(served, served_model, seed=1) + _schemathesis(served, anything, seed=2)
    after = _rss_mb(served.process.pid)
    print(f"schemathesis cases: {cases}; server RSS {baseline:.0f} MB -> {after:.0f} MB")
    assert cases > 500
    assert httpx.get(f"{served.url}/v2/health/ready", timeout=5).status_code == 200
    # 16 MB bodies are allowed, so a little growth is the allocator keeping pages;
    # a leak per request would show as much more over ~1000 requests.
    assert after < baseline * 1.5 + 64, f"RSS grew from {baseline:.0f} MB to {after:.0f} MB"

"""`modelyard ui` takes its port before it says where it listens: a taken port is one
line and exit 2, and no URL that will not answer is printed."""

from __future__ import annotations

import socket

from tests.helpers import run_cli

from modelyard.errors import EXIT_USAGE


def test_a_taken_port_is_one_line_and_no_url() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("ui", "--port", str(port), timeout=60)
    assert result.returncode == EXIT_USAGE, (result.returncode, result.stdout, result.stderr)
    assert "http://" not in result.stdout  # the URL of a UI that never started
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: port {port} on 127.0.0.1 is already in use")
    assert "--port" in lines[0]

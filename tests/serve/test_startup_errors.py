"""`modelyard serve` that cannot start says why in one line and exits 2 (usage), for
one worker and for several: a missing bundle folder, alias or version, a bare name,
a graph ONNX Runtime cannot load, a taken port (found before the model loads), and
bad setting values (each naming its key and what it takes)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.helpers import free_port, run_cli

from modelyard.errors import EXIT_USAGE, ConfigError
from modelyard.serve.settings import settings_from

# A failed start must be quick: these bound each run, well past what they need.
TIMEOUT_S = 90


def _one_line_usage_error(*args: str) -> str:
    """Run `modelyard serve ARGS`; assert exit 2 and a lone `error: ...` line on stderr."""
    result = run_cli("serve", *args, timeout=TIMEOUT_S)
    assert result.returncode == EXIT_USAGE, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and "Application startup" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert result.stdout == ""
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("{tmp}/no-such-bundle", "no bundle folder at "),
        ("digits-cnn@no-such-alias", "model 'digits-cnn' has no alias 'no-such-alias'"),
        ("models:/digits-cnn/99", "model 'digits-cnn' has no version 99"),
        ("digits-cnn", "write digits-cnn@candidate (or another alias)"),
    ],
)
def test_a_model_that_is_not_there_is_one_line_and_exit_2(
    trained,  # type: ignore[no-untyped-def]
    use_session_home: Path,
    tmp_path: Path,
    model: str,
    message: str,
    workers: str,
) -> None:
    line = _one_line_usage_error(
        model.format(tmp=tmp_path), "--port", str(free_port()), "--workers", workers
    )
    assert message in line


@pytest.fixture
def broken_bundle(trained, tmp_path: Path) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """A bundle folder whose manifest is fine but whose model.onnx is not a graph:
    it passes the bundle checks and fails only when ONNX Runtime opens it."""
    folder = tmp_path / "broken-bundle"
    shutil.copytree(trained.bundle_path, folder)
    (folder / "model.onnx").write_bytes(b"this is not an ONNX graph")
    yield folder


@pytest.mark.slow
def test_a_graph_onnx_runtime_cannot_load_is_one_line_and_exit_2(
    broken_bundle: Path, use_session_home: Path
) -> None:
    line = _one_line_usage_error(str(broken_bundle), "--port", str(free_port()))
    assert f"ONNX Runtime cannot load {broken_bundle / 'model.onnx'}" in line
    assert "export or train the model again" in line


@pytest.mark.slow
def test_with_workers_a_worker_that_cannot_start_stops_the_server_with_its_reason(
    broken_bundle: Path, use_session_home: Path
) -> None:
    # The bundle resolves in the parent, so the workers are the first to open the
    # graph; each fails in its startup, and uvicorn must not restart them forever.
    started = time.monotonic()
    result = run_cli(
        "serve", str(broken_bundle), "--port", str(free_port()), "--workers", "2", timeout=120
    )
    assert result.returncode == EXIT_USAGE, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "ONNX Runtime cannot load" in last, result.stderr
    assert time.monotonic() - started < 120


def test_a_taken_port_is_found_before_the_model_loads() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # A model that does not exist: had the model been loaded first, its error
        # would be the one reported.
        for workers in ("1", "2"):
            line = _one_line_usage_error("no-such-model", "--port", str(port), "--workers", workers)
            assert f"port {port} on 127.0.0.1 is already in use" in line
            assert "--port" in line


def test_a_port_bound_by_another_starting_server_counts_as_taken() -> None:
    # Two sockets with SO_REUSEADDR may bind one port while neither listens; the
    # check listens at once, so the second of two servers starting together fails.
    from modelyard.errors import ModelyardError
    from modelyard.serve.server import bind_port

    first = bind_port("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        with pytest.raises(ModelyardError, match=f"port {port} on 127.0.0.1 is already in use"):
            bind_port("127.0.0.1", port).close()
    finally:
        first.close()
    bind_port("127.0.0.1", port).close()  # free again once closed


def test_a_host_of_another_machine_says_which_hosts_work() -> None:
    from modelyard.errors import ModelyardError
    from modelyard.serve.server import bind_port

    with pytest.raises(ModelyardError, match=r"pass --host 127\.0\.0\.1 .* or --host 0\.0\.0\.0"):
        bind_port("192.0.2.1", 0).close()  # TEST-NET-1: never an address of this machine


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "max_batch_size=abc",
            "bad serve setting max_batch_size=abc: max_batch_size takes an integer",
        ),
        ("max_delay_ms=-1", "bad serve setting max_delay_ms=-1.0: max_delay_ms must be >= 0"),
        ("max_delay_ms=soon", "max_delay_ms=soon: max_delay_ms takes a number; e.g. max_delay_ms="),
        ("max_delay_ms=nan", "max_delay_ms must be >= 0"),
        (
            "max_batch_size=0",
            "bad serve setting max_batch_size=0: max_batch_size must be at least 1",
        ),
        ("workers=0", "bad serve setting workers=0: workers must be at least 1"),
        ("port=70000", "bad serve setting port=70000: port must be a TCP port, 0..65535"),
        ("request_timeout_s=0", "request_timeout_s must be > 0"),
        ("log_sample_rate=1.5", "log_sample_rate=1.5: log_sample_rate must be within 0..1"),
        ("ort_spinning=maybe", "ort_spinning=maybe: ort_spinning takes true or false"),
        ("drift_window=10", "drift_window=10: drift_window must be at least 30"),
        ("max_batch=8", "unknown serve setting 'max_batch'; valid keys: model, host, port"),
        ("64", "bad serve setting '64': write key=value (e.g. max_batch_size=64)"),
    ],
)
def test_a_bad_setting_names_its_key_and_what_it_takes(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from([override], model="digits-cnn@candidate")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_setting_on_the_command_line_is_one_line_and_exit_2() -> None:
    line = _one_line_usage_error("digits-cnn@candidate", "max_delay_ms=-1")
    assert "max_delay_ms=-1.0: max_delay_ms must be >= 0" in line


@pytest.mark.slow
def test_a_user_error_in_the_lifespan_is_kept_for_one_line_without_its_traceback(
    broken_bundle: Path, use_session_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path a worker process takes (its app loads the model in the lifespan)."""
    import asyncio

    from modelyard.errors import ModelyardError
    from modelyard.serve.app import STARTUP_ERROR_ENV, create_app

    reason = tmp_path / "reason.txt"
    monkeypatch.setenv(STARTUP_ERROR_ENV, str(reason))
    app = create_app(settings_from(model=str(broken_bundle), log_predictions=False))
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    with pytest.raises(ModelyardError, match="ONNX Runtime cannot load"):
        asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    # Starlette would send its traceback for uvicorn to log; the reason goes one way only.
    assert sent == [{"type": "lifespan.startup.failed", "message": ""}]
    assert str(app.state.startup_error) == reason.read_text()
    assert "ONNX Runtime cannot load" in reason.read_text()


@pytest.mark.parametrize(
    ("stop", "swallowed"), [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)]
)
def test_a_stop_while_the_model_loads_is_an_interrupt_that_says_so(
    stop: signal.Signals, swallowed: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The graceful-stop handler used to be installed before the load: a stop there
    # exited 0 wherever it landed (or died inside onnxruntime's import with a
    # traceback), and once, swallowed by the code it landed in, the server went on
    # to serve.
    import modelyard.serve.app as app_module
    from modelyard.serve import server

    def create_app(settings: object) -> object:
        try:
            os.kill(os.getpid(), stop)  # the user's Ctrl-C, or the orchestrator's stop
            time.sleep(1)
        except KeyboardInterrupt:
            if not swallowed:
                raise
        else:
            raise AssertionError("the stop did not interrupt the load")
        runtime = SimpleNamespace(preload=lambda: None)
        return SimpleNamespace(state=SimpleNamespace(runtime=runtime))

    monkeypatch.setattr(app_module, "create_app", create_app)
    monkeypatch.setattr(server, "check_second_aliases", lambda settings: None)
    monkeypatch.setattr(
        "modelyard.serve.registry_check.check_registry_reachable", lambda settings: None
    )
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    settings = settings_from([], model=str(tmp_path), port=free_port())
    with pytest.raises(KeyboardInterrupt, match="stopped while the model loaded"):
        server.run_server(settings)
    assert {s: signal.getsignal(s) for s in before} == before  # put back

"""``modelyard ui``: a thin command over :func:`modelyard.ui.launch.start_ui`."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from modelyard.cli_options import Debug
from modelyard.ui.launch import start_ui
from modelyard.ui.settings import UISettings


def ui(
    server: Annotated[
        str, typer.Option("--server", help="URL of the production `modelyard serve`.")
    ] = "http://127.0.0.1:8000",
    staging_server: Annotated[
        str | None,
        typer.Option("--staging-server", help="URL of a staging server to compare side by side."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model name (default: whatever the server serves)."),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Interface for the UI (0.0.0.0 for all).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the UI.")] = 8501,
    debug: Debug = False,
) -> None:
    """Open a web UI on a running server: draw, upload or type; see label, probabilities, drift."""
    settings = UISettings(server=server, staging_server=staging_server, model=model)
    process = start_ui(settings, host=host, port=port)
    typer.echo(f"modelyard UI on http://{host}:{port} (talking to {server}); Ctrl-C stops it")
    # Stopping `modelyard ui` (Ctrl-C, SIGTERM from a supervisor) stops Streamlit too.
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        code = process.wait()
    raise typer.Exit(code)

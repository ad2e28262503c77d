"""``modelyard ui``: a thin command over :func:`modelyard.ui.launch.start_ui`."""

from __future__ import annotations

import signal

import typer

from modelyard.cli_options import DEBUG
from modelyard.ui.launch import start_ui
from modelyard.ui.settings import UISettings


def ui(
    server: str = typer.Option(
        "http://127.0.0.1:8000", "--server", help="URL of the production `modelyard serve`."
    ),
    staging_server: str | None = typer.Option(
        None, "--staging-server", help="URL of a staging server to compare side by side."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model name (default: whatever the server serves)."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface for the UI (0.0.0.0 for all)."),
    port: int = typer.Option(8501, help="TCP port of the UI."),
    debug: bool = DEBUG,
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

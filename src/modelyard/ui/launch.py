"""Start the Streamlit app as its own process (``streamlit run``), pointed at servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from modelyard.errors import MissingExtra
from modelyard.serve.server import bind_port
from modelyard.ui.settings import UISettings

APP = Path(__file__).with_name("app.py")


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
        "--client.toolbarMode=viewer",
    ]


def start_ui(
    settings: UISettings, host: str = "127.0.0.1", port: int = 8501
) -> subprocess.Popen[bytes]:
    """The UI server process; it talks to ``settings.server`` (and staging) over HTTP.

    A port already taken (or a host not of this machine) is a :class:`ModelyardError`
    before Streamlit starts, so nothing claims a URL that will not answer.
    """
    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise MissingExtra("the UI needs Streamlit: pip install 'modelyard[ui]'") from None
    bind_port(host, port).close()  # Streamlit binds it a moment later
    return subprocess.Popen(streamlit_command(host, port), env={**os.environ, **settings.environ()})

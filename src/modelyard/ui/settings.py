"""What the UI talks to, read from the environment that ``modelyard ui`` sets.

Streamlit runs each page as a script, so the command line reaches the pages as
environment variables rather than as arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SERVER_ENV = "MODELYARD_UI_SERVER"
STAGING_ENV = "MODELYARD_UI_STAGING_SERVER"
MODEL_ENV = "MODELYARD_UI_MODEL"
API_KEY_ENV = "MODELYARD_API_KEY"


@dataclass(frozen=True)
class UISettings:
    server: str
    staging_server: str | None = None
    model: str | None = None
    api_key: str | None = None

    def servers(self) -> list[tuple[str, str]]:
        """(role, URL) of each server to show, production first."""
        found = [("production", self.server)]
        if self.staging_server:
            found.append(("staging", self.staging_server))
        return found

    def environ(self) -> dict[str, str]:
        values = {SERVER_ENV: self.server, STAGING_ENV: self.staging_server, MODEL_ENV: self.model}
        return {k: v for k, v in values.items() if v}


def ui_settings() -> UISettings:
    return UISettings(
        server=os.environ.get(SERVER_ENV, "http://127.0.0.1:8000"),
        staging_server=os.environ.get(STAGING_ENV) or None,
        model=os.environ.get(MODEL_ENV) or None,
        api_key=os.environ.get(API_KEY_ENV) or None,
    )

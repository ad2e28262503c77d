"""Images for the end-to-end tests, built once per session from deploy/.

Docker Hub is out of reach here, so the Python base comes from Debian's packages
(deploy/debian-python-base.sh) and the Dockerfiles get it as ``PYTHON_IMAGE``.
Images whose build does not read the working tree (the base, the MLflow server) are
kept under fixed tags, so a later run reuses them and disk does not grow; the server
image is built from the source every session and removed afterwards, with the
dangling build-stage images the session left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.docker import (
    CONTAINER_FIGURES,
    PREFIX,
    ROOT,
    TIMINGS,
    DockerError,
    build,
    create_network,
    dangling_images,
    docker,
    engine_answers,
    image_exists,
    image_id,
    image_size,
)
from tests.helpers import free_port

BASE_IMAGE = os.environ.get("MODELYARD_E2E_BASE_IMAGE", f"{PREFIX}/python:bookworm")
"""A Python 3.11 image with venv; built by deploy/debian-python-base.sh when absent."""
SERVER_IMAGE = f"{PREFIX}/server:test"
MLFLOW_IMAGE = f"{PREFIX}/mlflow:test"
UI_IMAGE = f"{PREFIX}/ui:test"
TRAIN_IMAGE = f"{PREFIX}/train:test"
TORCH_WHEELS = Path(os.environ.get("MODELYARD_TORCH_WHEELS", "/opt/wheels"))
"""A folder holding torch's CPU wheel (torch-2.13.0+cpu-*.whl): the CPU wheel index
(deploy/train.Dockerfile's default) is out of reach here, and PyPI's torch is the
multi-GB CUDA build."""
STACK = "tests/e2e/stack"
"""The compose stack's stand-in Dockerfiles and override (test_compose_up.py)."""

_built: dict[str, tuple[int, float]] = {}
"""tag -> (size in bytes, seconds its build took this session; 0 when reused)."""


MEASURED = ROOT / "benchmarks" / "deploy" / "results" / "ready-container.json"
"""The server container's figures, rewritten by every run that measured both cases."""


def _cpu() -> dict[str, str]:
    """The CPU model and its vector flags (``grep -o 'avx[^ ]*\\|amx[^ ]*' /proc/cpuinfo``)."""
    text = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if "model name" in ln), ""
    )
    flags = sorted({f for f in text.split() if f.startswith(("avx", "amx"))})
    return {"model": model, "flags": " ".join(flags), "cores": str(os.cpu_count())}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if set(CONTAINER_FIGURES) != {"bundle-folder", "registry-alias"}:
        return  # a partial run measures nothing worth keeping
    summary = {
        f"container-{case}": {
            "ready_s": {"max": round(figures["ready_s"], 3)},
            "rss_after_mb": {"max": round(figures["rss_mb"], 1)},
            "stop_s": {"max": round(figures["stop_s"], 3)},
        }
        for case, figures in sorted(CONTAINER_FIGURES.items())
    }
    record = {
        "measured_by": "make e2e (tests/e2e/test_server_image.py), one start per case",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "image": SERVER_IMAGE,
        "image_bytes": _built.get(SERVER_IMAGE, (0, 0.0))[0],
        "cpu": _cpu(),
        "summary": summary,
    }
    MEASURED.write_text(json.dumps(record, indent=2) + "\n")


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
def ui_image(base_image: str) -> Iterator[str]:
    """deploy/Dockerfile with ``EXTRAS=serve,ui`` (compose's ``ui``), from this tree."""
    args = {"PYTHON_IMAGE": base_image, "EXTRAS": "serve,ui"}
    try:
        seconds = build("deploy/Dockerfile", UI_IMAGE, args, 900)
    except DockerError as error:
        pytest.fail(f"building deploy/Dockerfile with EXTRAS=serve,ui failed: {error}")
    _built[UI_IMAGE] = (image_size(UI_IMAGE), seconds)
    yield UI_IMAGE
    docker("rmi", UI_IMAGE, timeout=120, check=False)


def _cached_build(dockerfile: str, tag: str, base_image: str, context: Path = ROOT) -> str:
    """An image whose build reads no source: kept under its tag, rebuilt through
    Docker's layer cache (seconds) when already there."""
    before = image_id(tag) if image_exists(tag) else ""
    try:
        seconds = build(dockerfile, tag, {"PYTHON_IMAGE": base_image}, 900, context)
    except DockerError as error:
        pytest.fail(f"building {dockerfile} failed: {error}")
    unchanged = image_id(tag) == before
    _built[tag] = (image_size(tag), 0.0 if unchanged else seconds)
    return tag


@pytest.fixture(scope="session")
def train_image(base_image: str) -> str:
    """deploy/train.Dockerfile from this tree, torch from TORCH_WHEELS.

    The folder is served over HTTP on the gateway of a Docker network of the test's
    own, where the build's RUN steps (on that network) reach the host and nothing else
    does, and handed to the build as TORCH_FIND_LINKS; torch's own dependencies come
    from PyPI. Kept under its tag, so the next run reuses the torch layer.
    """
    wheels = sorted(TORCH_WHEELS.glob("torch-2.13.0+cpu-*.whl"))
    if not wheels:
        pytest.fail(
            f"no torch-2.13.0+cpu wheel in {TORCH_WHEELS}: set MODELYARD_TORCH_WHEELS to a "
            "folder holding it (pip download torch==2.13.0 --index-url "
            "https://download.pytorch.org/whl/cpu --no-deps)"
        )
    network, gateway = create_network()
    port = free_port()
    command = [sys.executable, "-m", "http.server", "--bind", gateway, "--directory"]
    share = subprocess.Popen(
        [*command, str(TORCH_WHEELS), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    args = {
        "PYTHON_IMAGE": base_image,
        "TORCH_INDEX": "https://pypi.org/simple",
        "TORCH_FIND_LINKS": f"http://{gateway}:{port}/",
        "PIP_TRUSTED_HOST": gateway,
    }
    try:
        seconds = build("deploy/train.Dockerfile", TRAIN_IMAGE, args, 1500, network=network)
    except DockerError as error:
        pytest.fail(f"building deploy/train.Dockerfile failed: {error}")
    finally:
        share.terminate()
        share.wait(timeout=30)
        docker("network", "rm", network, check=False)
    _built[TRAIN_IMAGE] = (image_size(TRAIN_IMAGE), seconds)
    return TRAIN_IMAGE


@pytest.fixture(scope="session")
def mlflow_image(base_image: str) -> str:
    """deploy/mlflow.Dockerfile (MLflow, psycopg, boto3 from PyPI); cached by tag."""
    return _cached_build("deploy/mlflow.Dockerfile", MLFLOW_IMAGE, base_image)


@pytest.fixture(scope="session")
def stand_in_images(base_image: str) -> dict[str, str]:
    """The compose stack's public images, stood in for by tests/e2e/stack/*.Dockerfile
    (Debian's PostgreSQL and Prometheus, moto's S3 server); cached by tag."""
    return {
        name: _cached_build(
            f"{STACK}/{name}.Dockerfile", f"{PREFIX}/{name}:test", base_image, ROOT / STACK
        )
        for name in ("postgres", "s3", "prometheus")
    }

"""deploy/*Dockerfile: hadolint clean, and the server image holds no torch and runs as non-root.

The images themselves are built and run by tests/e2e (`make e2e`).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from tests.deploy.tools import venv_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DOCKERFILES = sorted(DEPLOY.glob("*Dockerfile"))


def test_every_dockerfile_is_found() -> None:
    assert {p.name for p in DOCKERFILES} == {"Dockerfile", "train.Dockerfile", "mlflow.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_report_problems(tmp_path: Path) -> None:
    # The check above can fail: an unpinned apt install run as root is flagged.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN apt-get install curl\n")
    result = subprocess.run([venv_tool("hadolint"), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3008" in result.stdout


def test_server_image_is_multi_stage_non_root_and_torch_free() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    # build (the venv), runtime (the base less what a server never runs, plus the
    # venv), and the image itself: that root copied into one layer, so what the
    # runtime stage deleted from the base weighs nothing.
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, re.M)
    assert stages == [("${PYTHON_IMAGE}", "build"), ("${PYTHON_IMAGE}", "runtime"), ("scratch", "")]
    build_stage, runtime_stage, final_stage = text.split("\nFROM ")[1:]
    assert 'pip install -c requirements/constraints.txt ".[${EXTRAS}]"' in text
    assert "ARG EXTRAS=serve" in text
    assert '! /opt/venv/bin/python -c "import torch"' in text
    assert "COPY --from=build /opt/venv /opt/venv" in runtime_stage
    assert "COPY --from=runtime / /" in final_stage
    assert re.search(r"^USER 10001", final_stage, re.M)
    assert "/v2/health/ready" in final_stage.split("HEALTHCHECK", 1)[1]
    assert 'ENTRYPOINT ["modelyard", "serve"]' in final_stage
    assert "--host" in final_stage and '"0.0.0.0"' in final_stage
    # The image starts from scratch: nothing of the base's ENV survives but what the
    # final stage sets.
    assert "PATH=/opt/venv/bin:" in final_stage and "LANG=C.UTF-8" in final_stage
    # The runtime venv leaves pip and setuptools behind and its extensions stripped
    # (not the vendored *.libs/, which strip corrupts); MODELYARD_HOME exists and
    # belongs to the server's user, so a volume mounted there is writable by it.
    assert "pip uninstall --yes --quiet pip setuptools" in build_stage
    assert "-not -path '*.libs/*' -exec strip --strip-unneeded" in build_stage
    assert "install -d -o 10001 -g 10001 /home/modelyard/.modelyard" in runtime_stage
    assert "dpkg --purge" in runtime_stage


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_image_defaults_to_python_slim_and_can_be_replaced(dockerfile: Path) -> None:
    # Users elsewhere get python:3.11-slim; where Docker Hub is out of reach (tests/e2e)
    # --build-arg PYTHON_IMAGE=<a base from deploy/debian-python-base.sh> replaces it.
    text = dockerfile.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    # `FROM scratch` takes nothing from a registry (the server's last stage).
    assert froms[0] == "${PYTHON_IMAGE}", froms
    assert all(image in ("${PYTHON_IMAGE}", "scratch") for image in froms), froms


def test_base_image_script_passes_shellcheck() -> None:
    script = DEPLOY / "debian-python-base.sh"
    result = subprocess.run([venv_tool("shellcheck"), str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_training_image_installs_the_pinned_cpu_torch_first() -> None:
    text = (DEPLOY / "train.Dockerfile").read_text()
    torch_at = text.index("pip install torch==2.13.0")
    assert torch_at < text.index('pip install -c /tmp/constraints.txt ".[train]"')
    # The rest at the tested versions, and the torch build already there kept.
    assert "grep -v '^torch==' requirements/constraints.txt >/tmp/constraints.txt" in text
    assert re.search(r"^ARG TORCH_INDEX=https://download\.pytorch\.org/whl/cpu$", text, re.M)
    assert re.search(r"^USER 10001", text, re.M)
